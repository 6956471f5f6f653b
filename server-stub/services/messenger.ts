/** What the widget's calls do: ping, conversations, messages, read marks, events, logout. */
import { sql } from 'kysely';
import { normaliseEmail, type Identity } from '../domain/identity.ts';
import { verifySignedValue } from '../domain/verification.ts';
import type { App } from '../storage/apps.ts';
import {
  recordEventOccurrence, resolveVisitor, setAttributes, unbindVisitor, updateContact, type ContactRow, type Db,
} from '../storage/contacts.ts';
import {
  findConversation, findConversationByClientId, findMessageByClientId, insertConversation, insertMessage, listConversations, listMessages, markRead,
  messageView, unreadCount, visitorWithUnread, type MessageRow, type MessageView, type VisitorContact,
} from '../storage/conversations.ts';
import { identityNames } from '../domain/rules.ts';
import { ServiceError, notFound, type Services } from './context.ts';
import { contactCreated, emitWebhookEvents } from './webhooks.ts';
import { enqueueMergesInto, ensureVisitorContact, identify, markLeadIfEmailMatches, mergeStatusOf } from './identity.ts';
import { transaction } from '../storage/transactions.ts';

export interface ClaimedUser {
  identity: Identity | null;
  /** The exact string the host site signed: user_id, or email without one (R14). */
  signed: string;
  name?: string | undefined;
  user_hash?: string | undefined;
}

export interface ContactView {
  id: string;
  role: ContactRow['role'];
  user_id: string | null;
  email: string | null;
  name: string | null;
}

export const contactView = (c: VisitorContact): ContactView => ({ id: c.id, role: c.role, user_id: c.user_id, email: c.email, name: c.name });

/**
 * R14: a call carrying an identity must carry its HMAC when the app requires verification.
 * Answers the claim as far as it is proven: the hash covers the user_id (or the email when there is
 * no user_id), so an email sent beside a signed user_id is not proven and is dropped. Trusting it
 * would let anyone with an account of their own claim another person's email, and with it that
 * person's account or their leads' conversations (R3).
 */
export function verifyClaim(app: App, user: ClaimedUser | undefined): ClaimedUser | undefined {
  if (!user?.identity || !app.require_verification) return user;
  if (!verifySignedValue(app.identity_secret, user.signed, user.user_hash)) {
    throw new ServiceError(401, 'identity-verification-failed', 'user_hash is missing or does not match the identity');
  }
  if (user.identity.user_id !== null && user.identity.email !== null) return { ...user, identity: { user_id: user.identity.user_id, email: null } };
  return user;
}

/** The contact a messenger call acts for: the logged-in user when it carries one, else the cookie's contact. */
async function actingContact(trx: Db, s: Services, app: App, visitorId: string, user: ClaimedUser | undefined, role: 'visitor' | 'lead'): Promise<{ contact: ContactRow; enqueued: number }> {
  if (user?.identity) {
    const r = await identify(trx, s, app.id, visitorId, user.identity, { name: user.name });
    return { contact: r.user, enqueued: r.enqueued };
  }
  return { contact: await lockedVisitorContact(trx, s, app.id, visitorId, role), enqueued: 0 };
}

/**
 * The cookie's contact, row-locked for this transaction. Without the lock a lead's merge could
 * commit between reading the lead and writing to it (PostgreSQL runs them side by side), and an
 * event or conversation would land on the tombstone. The lock is a no-op update that only
 * matches a live contact: after waiting for a merge it matches nothing, and the cookie is read
 * again (it then opens the user after a cookie merge, or nobody after any other merge).
 */
async function lockedVisitorContact(trx: Db, s: Services, appId: string, visitorId: string, role: 'visitor' | 'lead'): Promise<ContactRow> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const contact = await ensureVisitorContact(trx, s, appId, visitorId, role);
    const locked = await trx.updateTable('contacts').set({ updated_at: sql`updated_at` }).where('id', '=', contact.id).where('merged_into', 'is', null).executeTakeFirst();
    if (Number(locked.numUpdatedRows) === 1) return contact;
  }
  throw new ServiceError(409, 'conflict', 'the visitor changed during the request: try again');
}

export interface PingInput {
  visitor_id: string;
  user?: ClaimedUser | undefined;
  lead?: { email?: string | undefined; name?: string | undefined } | undefined;
  attributes?: Record<string, unknown> | undefined;
}

export interface PingAnswer {
  contact: ContactView;
  merge: { status: 'none' | 'pending' | 'done' };
  unread_count: number;
}

export async function ping(s: Services, app: App, claimed: PingInput): Promise<PingAnswer> {
  const input = { ...claimed, user: verifyClaim(app, claimed.user) };
  if (!input.user?.identity && !input.lead && (!input.attributes || Object.keys(input.attributes).length === 0)) {
    // A known visitor's page view changes nothing but last-seen (coalesced): no transaction at all,
    // and between writes not even a read (ping-answers.ts says why a kept answer is never stale).
    const kept = s.pingAnswers?.get(app.id, input.visitor_id);
    if (kept) {
      s.lastSeen.touch(kept.contactId, s.clock.now().toISOString());
      return kept.answer;
    }
    const readAt = s.pingAnswers?.generation ?? 0;
    const known = await visitorWithUnread(s.db, app.id, input.visitor_id);
    const status = known?.role === 'user' ? await mergeStatusOf(s.db, known.id) : 'none';
    // A user with leads waiting to merge goes the transactional way below, which queues them (R5).
    if (known && status !== 'pending') {
      s.lastSeen.touch(known.id, s.clock.now().toISOString());
      const answer: PingAnswer = { contact: contactView(known), merge: { status }, unread_count: known.unread };
      s.pingAnswers?.keep(readAt, app.id, input.visitor_id, known.id, answer);
      return answer;
    }
  }
  let enqueued = 0;
  const answer = await transaction(s.db, async (trx) => {
    const acting = await actingContact(trx, s, app, input.visitor_id, input.user, 'visitor');
    enqueued = acting.enqueued;
    let contact = acting.contact;
    if (input.lead && contact.role !== 'user') contact = await applyLeadDetails(trx, s, contact, input.lead);
    if (input.attributes && Object.keys(input.attributes).length > 0) await setAttributes(trx, contact.id, input.attributes);
    // R5: the user's page view is their next ping, signed in again or not: waiting merges run now.
    if (!input.user?.identity && contact.role === 'user') enqueued += await enqueueMergesInto(trx, s, app.id, contact.id);
    if (!input.user?.identity) s.lastSeen.touch(contact.id, s.clock.now().toISOString());
    const status = contact.role === 'user' ? await mergeStatusOf(trx, contact.id) : 'none';
    return { contact: contactView(contact), merge: { status }, unread_count: await unreadCount(trx, app.id, contact.id) };
  });
  if (enqueued > 0) s.wakeWorker();
  return answer;
}

/**
 * `lead` details are not a claim of identity: they set the lead's email and name, and the email
 * may then match a user (R3). A visitor who leaves an email becomes a lead.
 */
async function applyLeadDetails(trx: Db, s: Services, contact: ContactRow, lead: NonNullable<PingInput['lead']>): Promise<ContactRow> {
  const changes: Partial<ContactRow> = {};
  if (lead.email !== undefined) Object.assign(changes, { email: lead.email.trim(), email_norm: normaliseEmail(lead.email) });
  if (lead.name !== undefined) changes.name = lead.name;
  if (contact.role === 'visitor' && lead.email !== undefined) changes.role = 'lead';
  if (Object.keys(changes).length === 0) return contact;
  changes.updated_at = s.clock.now().toISOString();
  await updateContact(trx, contact.id, changes);
  const updated = { ...contact, ...changes };
  if (contact.role === 'visitor' && updated.role === 'lead') await emitWebhookEvents(trx, s, contact.app_id, [contactCreated(updated)]);
  if (lead.email !== undefined) await markLeadIfEmailMatches(trx, contact.app_id, updated);
  return updated;
}

export interface StartInput {
  visitor_id: string;
  user?: ClaimedUser | undefined;
  body: string;
  client_id: string;
}

export interface StartAnswer {
  conversation: { id: string };
  message: MessageView;
  contact: ContactView;
}

/** R1: the first message starts a conversation and makes the visitor a lead; client_id makes it idempotent. */
export async function startConversation(s: Services, app: App, claimed: StartInput): Promise<StartAnswer> {
  const input = { ...claimed, user: verifyClaim(app, claimed.user) };
  let enqueued = 0;
  let created: MessageRow | null = null;
  const answer = await transaction(s.db, async (trx) => {
    const acting = await actingContact(trx, s, app, input.visitor_id, input.user, 'lead');
    enqueued = acting.enqueued;
    let contact = acting.contact;
    const existing = await findConversationByClientId(trx, app.id, input.client_id);
    if (existing) return replayStart(trx, s, app, contact, existing.id, input.client_id);
    if (contact.role === 'visitor') {
      // R1: promoted in place; its events and attributes stay with it.
      await updateContact(trx, contact.id, { role: 'lead', updated_at: s.clock.now().toISOString() });
      contact = { ...contact, role: 'lead' };
      await emitWebhookEvents(trx, s, app.id, [contactCreated(contact)]);
    }
    const now = s.clock.now().toISOString();
    const conversationId = s.ids('cnv');
    if (!(await insertConversation(trx, { id: conversationId, app_id: app.id, contact_id: contact.id, client_id: input.client_id, created_at: now, updated_at: now, contact_read_at: now }))) {
      // A concurrent start with the same client_id won (PostgreSQL): answer with that conversation.
      return replayStart(trx, s, app, contact, (await findConversationByClientId(trx, app.id, input.client_id))!.id, input.client_id);
    }
    const message: MessageRow = { id: s.ids('msg'), app_id: app.id, conversation_id: conversationId, author_type: 'contact', author_id: contact.id, body: input.body, client_id: input.client_id, created_at: now };
    if (!(await insertMessage(trx, message))) throw new ServiceError(409, 'client-id-conflict', 'client_id was already used for another message');
    await emitWebhookEvents(trx, s, app.id, [
      { type: 'conversation.created', data: { id: conversationId, contact_id: contact.id, created_at: now } },
      { type: 'message.created', data: { ...messageView(message), contact_id: contact.id } },
    ]);
    created = message;
    return { conversation: { id: conversationId }, message: messageView(message), contact: contactView(contact) };
  });
  if (enqueued > 0) s.wakeWorker();
  if (created) s.hub.publish(answer.contact.id, { event: 'message', data: answer.message });
  return answer;
}

async function replayStart(trx: Db, s: Services, app: App, contact: ContactRow, conversationId: string, clientId: string): Promise<StartAnswer> {
  const conversation = await findConversation(trx, app.id, conversationId);
  if (!conversation || conversation.contact_id !== contact.id) throw new ServiceError(409, 'client-id-conflict', 'client_id was already used by someone else');
  const message = await findMessageByClientId(trx, app.id, clientId);
  if (!message) throw new ServiceError(409, 'client-id-conflict', 'client_id was already used for another conversation');
  return { conversation: { id: conversation.id }, message: messageView(message), contact: contactView(contact) };
}

/** The cookie's contact for read-only and follow-up calls; no contact yet means nothing to see. */
async function knownContact(db: Db, s: Services, app: App, visitorId: string, claimed: ClaimedUser | undefined): Promise<ContactRow> {
  const user = verifyClaim(app, claimed);
  const contact = await resolveVisitor(db, app.id, visitorId);
  if (!contact) throw notFound('visitor');
  if (user?.identity && contact.role === 'user') {
    // A signed identity that is not the cookie's user: this cookie is not theirs (R8).
    if (!identityNames(user.identity, contact)) throw new ServiceError(409, 'visitor-reset-required', 'this visitor cookie belongs to another user: start a new visitor');
  }
  return contact;
}

async function ownConversation(db: Db, s: Services, app: App, visitorId: string, conversationId: string, user?: ClaimedUser) {
  const contact = await knownContact(db, s, app, visitorId, user);
  const conversation = await findConversation(db, app.id, conversationId);
  // 404 whether it does not exist or is someone else's: ids cannot be probed.
  if (!conversation || conversation.contact_id !== contact.id) throw notFound('conversation');
  return { contact, conversation };
}

export async function conversationsOf(s: Services, app: App, visitorId: string) {
  const contact = await resolveVisitor(s.db, app.id, visitorId);
  if (!contact) return { data: [] };
  const list = await listConversations(s.db, app.id, contact.id);
  return { data: list.map((c) => ({ id: c.id, last_message: c.last_message, unread_count: c.unread_count, updated_at: c.updated_at, created_at: c.created_at })) };
}

export async function sendMessage(s: Services, app: App, input: { visitor_id: string; conversation_id: string; body: string; client_id: string; user?: ClaimedUser | undefined }): Promise<{ message: MessageView; created: boolean }> {
  const result = await transaction(s.db, async (trx) => {
    const { contact, conversation } = await ownConversation(trx, s, app, input.visitor_id, input.conversation_id, input.user);
    const replay = async () => {
      const existing = await findMessageByClientId(trx, app.id, input.client_id);
      if (!existing) return null;
      if (existing.conversation_id !== conversation.id) throw new ServiceError(409, 'client-id-conflict', 'client_id was already used for another message');
      return { message: messageView(existing), created: false, contactId: contact.id };
    };
    const earlier = await replay();
    if (earlier) return earlier;
    const message: MessageRow = { id: s.ids('msg'), app_id: app.id, conversation_id: conversation.id, author_type: 'contact', author_id: contact.id, body: input.body, client_id: input.client_id, created_at: s.clock.now().toISOString() };
    if (await insertMessage(trx, message)) {
      await emitWebhookEvents(trx, s, app.id, [{ type: 'message.created', data: { ...messageView(message), contact_id: contact.id } }]);
      return { message: messageView(message), created: true, contactId: contact.id };
    }
    // A concurrent send of the same client_id won the insert (PostgreSQL): answer with that one.
    const winner = await replay();
    if (!winner) throw new ServiceError(409, 'client-id-conflict', 'client_id is in use');
    return winner;
  });
  if (result.created) s.hub.publish(result.contactId, { event: 'message', data: result.message });
  return { message: result.message, created: result.created };
}

export async function messagesOf(s: Services, app: App, visitorId: string, conversationId: string, after?: string) {
  const { conversation } = await ownConversation(s.db, s, app, visitorId, conversationId);
  return { data: (await listMessages(s.db, conversation.id, after)).map(messageView) };
}

export async function markConversationRead(s: Services, app: App, visitorId: string, conversationId: string): Promise<void> {
  const { contact } = await transaction(s.db, async (trx) => {
    const own = await ownConversation(trx, s, app, visitorId, conversationId);
    await markRead(trx, own.conversation.id, s.clock.now().toISOString());
    return own;
  });
  s.hub.publish(contact.id, { event: 'unread', data: { unread_count: await unreadCount(s.db, app.id, contact.id) } });
}

export async function trackEvent(s: Services, app: App, claimed: { visitor_id: string; name: string; metadata?: Record<string, unknown> | undefined; occurred_at?: string | undefined; user?: ClaimedUser | undefined }): Promise<void> {
  const input = { ...claimed, user: verifyClaim(app, claimed.user) };
  await transaction(s.db, async (trx) => {
    const { contact } = await actingContact(trx, s, app, input.visitor_id, input.user, 'visitor');
    const at = input.occurred_at ?? s.clock.now().toISOString();
    await trx.insertInto('events').values({ id: s.ids('evt'), app_id: app.id, contact_id: contact.id, name: input.name, metadata: input.metadata ? JSON.stringify(input.metadata) : null, occurred_at: at }).execute();
    await recordEventOccurrence(trx, contact.id, input.name, at);
  });
}

/** R15 on the server: the logged-out cookie no longer opens anyone's conversations. */
export async function logout(s: Services, app: App, visitorId: string): Promise<void> {
  await unbindVisitor(s.db, app.id, visitorId);
}

/** The live contact an open stream follows. */
export async function streamContact(s: Services, app: App, visitorId: string): Promise<ContactRow> {
  const contact = await resolveVisitor(s.db, app.id, visitorId);
  if (!contact) throw notFound('visitor');
  return contact;
}
