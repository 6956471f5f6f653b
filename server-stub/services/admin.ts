/** What operators and server-side scripts do through the admin API (R7, R9, R10, R13). */
import { sql } from 'kysely';
import { normaliseEmail, type Identity } from '../domain/identity.ts';
import { matchUser } from '../domain/rules.ts';
import type { App } from '../storage/apps.ts';
import {
  findContact, getAttributes, getEventSummaries, insertContact, listContacts, resolveContact, setAttributes, updateContact, usersForIdentity,
  type ContactFilter, type ContactRow, type Db,
} from '../storage/contacts.ts';
import { findConversation, insertMessage, listMessages, messageView, summarise, unreadCount, type MessageRow } from '../storage/conversations.ts';
import { ServiceError, notFound, type Services } from './context.ts';
import { createUser, markLeadsMatchingUser } from './identity.ts';
import { contactCreated, emitWebhookEvents } from './webhooks.ts';
import { announceMerge, mergeLead, mergeView, type MergeView } from './merge-engine.ts';
import { transaction } from '../storage/transactions.ts';

export interface AdminContactView {
  id: string;
  role: ContactRow['role'];
  user_id: string | null;
  email: string | null;
  name: string | null;
  created_via: ContactRow['created_via'];
  created_at: string;
  updated_at: string;
  last_seen_at: string | null;
  /** A pending merge (R2/R3): the user this contact will merge into when that user next pings. */
  merge_pending_into: { id: string; user_id: string | null; email: string | null; name: string | null; trigger: string } | null;
}

async function adminView(db: Db, c: ContactRow): Promise<AdminContactView> {
  let pending: AdminContactView['merge_pending_into'] = null;
  if (c.merge_into_id && c.merged_into === null) {
    const u = await findContact(db, c.app_id, c.merge_into_id);
    if (u) pending = { id: u.id, user_id: u.user_id, email: u.email, name: u.name, trigger: c.merge_trigger ?? 'email' };
  }
  return {
    id: c.id, role: c.role, user_id: c.user_id, email: c.email, name: c.name, created_via: c.created_via,
    created_at: c.created_at, updated_at: c.updated_at, last_seen_at: c.last_seen_at, merge_pending_into: pending,
  };
}

export interface NewContactInput {
  role: 'lead' | 'user';
  identity: Identity | null;
  name?: string | undefined;
  attributes?: Record<string, unknown> | undefined;
}

export async function createContact(s: Services, app: App, input: NewContactInput): Promise<AdminContactView> {
  return transaction(s.db, async (trx) => {
    let contact: ContactRow;
    if (input.role === 'user') {
      if (!input.identity) throw new ServiceError(400, 'invalid-input', 'a user needs a user_id or an email');
      const existing = matchUser(input.identity, await usersForIdentity(trx, app.id, input.identity.user_id, input.identity.email === null ? null : normaliseEmail(input.identity.email)));
      if (existing && (input.identity.user_id === null || existing.user.user_id === input.identity.user_id)) {
        throw new ServiceError(409, 'contact-exists', `a user with this identity exists: ${existing.user.id}`);
      }
      contact = await createUser(trx, s, app.id, input.identity, { name: input.name }, 'api');
      // R3: a new user with an email marks the messenger leads that share it.
      await markLeadsMatchingUser(trx, app.id, contact, 'email');
    } else {
      const email = input.identity?.email ?? null;
      if (input.identity?.user_id) throw new ServiceError(400, 'invalid-input', 'a lead has no user_id; create a user instead');
      const now = s.clock.now().toISOString();
      contact = await insertContact(trx, {
        id: s.ids('cnt'), app_id: app.id, role: 'lead', user_id: null, email, email_norm: email === null ? null : normaliseEmail(email), name: input.name ?? null,
        created_via: 'api', created_at: now, updated_at: now, last_seen_at: null, merged_into: null, merged_at: null, merge_into_id: null, merge_trigger: null, attributes: '{}', event_summaries: '{}',
      });
      await emitWebhookEvents(trx, s, app.id, [contactCreated(contact)]);
    }
    if (input.attributes) await setAttributes(trx, contact.id, input.attributes);
    return adminView(trx, contact);
  });
}

export async function listContactsPage(s: Services, app: App, filter: ContactFilter) {
  const rows = await listContacts(s.db, app.id, filter);
  const page = rows.slice(0, filter.limit);
  const data = [];
  for (const c of page) data.push(await adminView(s.db, c));
  return { data, next_cursor: rows.length > filter.limit ? page[page.length - 1]!.id : null };
}

/** A contact with attributes, event summaries and conversations; a merged lead's id answers with its user (R6). */
export async function contactDetail(s: Services, app: App, id: string) {
  const contact = await resolveContact(s.db, app.id, id);
  if (!contact) throw notFound('contact');
  const conversations = await s.db.selectFrom('conversations').select('id').where('contact_id', '=', contact.id).orderBy('created_at').execute();
  return {
    ...(await adminView(s.db, contact)),
    attributes: await getAttributes(s.db, contact.id),
    events: await getEventSummaries(s.db, contact.id),
    conversation_ids: conversations.map((c) => c.id),
    unread_count: await unreadCount(s.db, app.id, contact.id),
  };
}

/** R9: a lead becomes a user in place, or merges into the user that already has the identity. */
export async function convertLead(s: Services, app: App, id: string, given: Identity | null) {
  let merged: MergeView | null = null;
  const userId = await transaction(s.db, async (trx) => {
    // Row-lock the lead first (a no-op update that matches only a live contact): a merge of this
    // lead running at the same time then either finished before (404 below) or waits for us. Read
    // without the lock, a lead merged meanwhile could be turned into a "user" that is a tombstone.
    await trx.updateTable('contacts').set({ updated_at: sql`updated_at` }).where('app_id', '=', app.id).where('id', '=', id).where('merged_into', 'is', null).execute();
    const lead = await findContact(trx, app.id, id);
    if (!lead || lead.merged_into !== null) throw notFound('lead');
    if (lead.role === 'user') throw new ServiceError(409, 'already-a-user', 'the contact is a user already');
    const identity: Identity | null = given ?? (lead.email ? { user_id: null, email: lead.email } : null);
    if (!identity) throw new ServiceError(400, 'invalid-input', 'give a user_id or an email: the lead has none');
    const emailNorm = identity.email === null ? null : normaliseEmail(identity.email);
    const match = matchUser(identity, await usersForIdentity(trx, app.id, identity.user_id, emailNorm));
    if (match) {
      const outcome = await mergeLead(trx, s, app.id, lead.id, match.user.id, 'convert');
      if (outcome.kind === 'merged') merged = outcome.merge;
      return match.user.id;
    }
    const now = s.clock.now().toISOString();
    const changes: Partial<ContactRow> = { role: 'user', user_id: identity.user_id, merge_into_id: null, merge_trigger: null, updated_at: now };
    if (identity.email !== null) Object.assign(changes, { email: identity.email, email_norm: emailNorm });
    await updateContact(trx, lead.id, changes);
    const user = { ...lead, ...changes } as ContactRow;
    await markLeadsMatchingUser(trx, app.id, user, 'email');
    return lead.id;
  });
  if (merged) announceMerge(s, merged);
  return contactDetail(s, app, userId);
}

/** R10: merge a given lead into a given user, now. */
export async function explicitMerge(s: Services, app: App, fromId: string, intoId: string): Promise<{ merge: MergeView }> {
  if (fromId === intoId) throw new ServiceError(400, 'self-merge', 'a contact cannot be merged into itself');
  const outcome = await transaction(s.db, (trx) => mergeLead(trx, s, app.id, fromId, intoId, 'explicit'));
  if (outcome.kind === 'merged') announceMerge(s, outcome.merge);
  if (!outcome.merge) throw new ServiceError(409, 'already-merged', 'the lead was already merged');
  if (outcome.kind === 'noop' && outcome.merge.into !== intoId) throw new ServiceError(409, 'already-merged', `the lead was already merged into ${outcome.merge.into}`);
  return { merge: outcome.merge };
}

export async function listMerges(s: Services, app: App, q: { contact_id?: string | undefined; limit: number; cursor?: string | undefined }) {
  let query = s.db.selectFrom('merges').selectAll().where('app_id', '=', app.id);
  if (q.contact_id) {
    const cid = q.contact_id;
    query = query.where((eb) => eb.or([eb('from_id', '=', cid), eb('into_id', '=', cid)]));
  }
  if (q.cursor) query = query.where('id', '<', q.cursor);
  const rows = await query.orderBy('id', 'desc').limit(q.limit + 1).execute();
  const page = rows.slice(0, q.limit);
  return { data: page.map(mergeView), next_cursor: rows.length > q.limit ? page[page.length - 1]!.id : null };
}

/** Conversations, newest first, paged by id; of one contact (a merged lead's id means its user) or of the app. */
export async function conversationsOfContact(s: Services, app: App, q: { contact_id?: string | undefined; limit: number; cursor?: string | undefined }) {
  let query = s.db.selectFrom('conversations').selectAll().where('app_id', '=', app.id);
  if (q.contact_id !== undefined) {
    const contact = await resolveContact(s.db, app.id, q.contact_id);
    if (!contact) throw notFound('contact');
    query = query.where('contact_id', '=', contact.id);
  }
  if (q.cursor !== undefined) query = query.where('id', '<', q.cursor);
  const rows = await query.orderBy('id', 'desc').limit(q.limit + 1).execute();
  const page = rows.slice(0, q.limit);
  const data = [];
  for (const c of page) data.push(await summarise(s.db, c));
  return { data, next_cursor: rows.length > q.limit ? page[page.length - 1]!.id : null };
}

/** A conversation's messages, oldest first, a page at a time (`next_cursor` null on the last). */
export async function conversationMessages(s: Services, app: App, id: string, page: { limit: number; cursor?: string | undefined }) {
  const conversation = await findConversation(s.db, app.id, id);
  if (!conversation) throw notFound('conversation');
  const rows = await listMessages(s.db, conversation.id, page.cursor, page.limit + 1);
  const data = rows.slice(0, page.limit);
  return { data: data.map(messageView), next_cursor: rows.length > page.limit ? data[data.length - 1]!.id : null };
}

/** An operator's reply: stored, then pushed to every open stream of the conversation's contact. */
export async function reply(s: Services, app: App, conversationId: string, body: string, agentId: string) {
  const message: MessageRow = await transaction(s.db, async (trx) => {
    const conversation = await findConversation(trx, app.id, conversationId);
    if (!conversation) throw notFound('conversation');
    const m: MessageRow = { id: s.ids('msg'), app_id: app.id, conversation_id: conversation.id, author_type: 'agent', author_id: agentId, body, client_id: null, created_at: s.clock.now().toISOString() };
    await insertMessage(trx, m);
    await emitWebhookEvents(trx, s, app.id, [{ type: 'message.created', data: { ...messageView(m), contact_id: conversation.contact_id } }]);
    return m;
  });
  const conversation = await findConversation(s.db, app.id, conversationId);
  if (conversation) {
    s.hub.publish(conversation.contact_id, { event: 'message', data: messageView(message) });
    s.hub.publish(conversation.contact_id, { event: 'unread', data: { unread_count: await unreadCount(s.db, app.id, conversation.contact_id) } });
  }
  return messageView(message);
}
