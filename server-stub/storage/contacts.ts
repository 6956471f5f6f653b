/** Contacts (with their attributes and event summaries) and the visitor cookies bound to them. */
import type { Kysely } from 'kysely';
import { encodeAttributes, parseAttributes, sortedAttributes, withAttributes, type Attributes } from '../domain/attributes.ts';
import { encodeEventSummaries, eventSummaryList, parseEventSummaries, withOccurrence, type EventSummary } from '../domain/event-summaries.ts';
import { forUpdate } from './row-locks.ts';
import type { ContactsTable, Database } from './schema.ts';

export type Db = Kysely<Database>;
export type ContactRow = ContactsTable;

export async function findContact(db: Db, appId: string, id: string): Promise<ContactRow | null> {
  return (await db.selectFrom('contacts').selectAll().where('app_id', '=', appId).where('id', '=', id).executeTakeFirst()) ?? null;
}

/** Follows tombstones (R6) to the live contact an id stands for. */
export async function resolveContact(db: Db, appId: string, id: string): Promise<ContactRow | null> {
  let contact = await findContact(db, appId, id);
  for (let hops = 0; contact?.merged_into && hops < 8; hops++) contact = await findContact(db, appId, contact.merged_into);
  return contact && contact.merged_into === null ? contact : null;
}

/** The live contact a visitor cookie belongs to, or null when the cookie is new (or was logged out). */
export async function resolveVisitor(db: Db, appId: string, visitorId: string): Promise<ContactRow | null> {
  // One query for the usual case (the cookie's contact is live); tombstones are followed after.
  const contact = await db.selectFrom('visitors').innerJoin('contacts', 'contacts.id', 'visitors.contact_id').selectAll('contacts')
    .where('visitors.app_id', '=', appId).where('visitors.visitor_id', '=', visitorId).executeTakeFirst();
  if (!contact) return null;
  return contact.merged_into === null ? contact : resolveContact(db, appId, contact.merged_into);
}

/** Binds a cookie to a contact; false when the cookie was bound meanwhile (a concurrent first ping). */
export async function bindVisitor(db: Db, appId: string, visitorId: string, contactId: string, now: string): Promise<boolean> {
  const result = await db
    .insertInto('visitors')
    .values({ app_id: appId, visitor_id: visitorId, contact_id: contactId, created_at: now })
    .onConflict((oc) => oc.columns(['app_id', 'visitor_id']).doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
}

export async function unbindVisitor(db: Db, appId: string, visitorId: string): Promise<void> {
  await db.deleteFrom('visitors').where('app_id', '=', appId).where('visitor_id', '=', visitorId).execute();
}

export async function insertContact(db: Db, row: ContactRow): Promise<ContactRow> {
  await db.insertInto('contacts').values(row).execute();
  return row;
}

export async function updateContact(db: Db, id: string, changes: Partial<ContactRow>): Promise<void> {
  if (Object.keys(changes).length === 0) return;
  await db.updateTable('contacts').set(changes).where('id', '=', id).execute();
}

/** Live users that an identity could name: same user_id, or same normalised email. */
export async function usersForIdentity(db: Db, appId: string, userId: string | null, emailNorm: string | null): Promise<ContactRow[]> {
  // Two indexed lookups rather than one OR, which SQLite's planner answers by reading every user.
  const live = db.selectFrom('contacts').selectAll().where('app_id', '=', appId).where('role', '=', 'user').where('merged_into', 'is', null);
  // `user_id is not null` lets the planner use the partial unique (app_id, user_id) index.
  const byId = userId === null ? [] : await live.where('user_id', 'is not', null).where('user_id', '=', userId).execute();
  const byEmail = emailNorm === null ? [] : await live.where('email_norm', '=', emailNorm).execute();
  return [...byId, ...byEmail.filter((u) => !byId.some((x) => x.id === u.id))];
}

export async function usersWithEmail(db: Db, appId: string, emailNorm: string): Promise<ContactRow[]> {
  return db.selectFrom('contacts').selectAll().where('app_id', '=', appId).where('role', '=', 'user')
    .where('merged_into', 'is', null).where('email_norm', '=', emailNorm).execute();
}

/** R3: messenger-created, unmerged leads with this email (API leads never match, R7). */
export async function messengerLeadsWithEmail(db: Db, appId: string, emailNorm: string): Promise<ContactRow[]> {
  return db.selectFrom('contacts').selectAll().where('app_id', '=', appId).where('email_norm', '=', emailNorm)
    .where('role', 'in', ['visitor', 'lead']).where('created_via', '=', 'messenger').where('merged_into', 'is', null).execute();
}

/** Contacts marked to merge into this user and not merged yet (R5 "pending"). */
export async function pendingMarksInto(db: Db, userId: string): Promise<ContactRow[]> {
  return db.selectFrom('contacts').selectAll().where('merge_into_id', '=', userId).where('merged_into', 'is', null).execute();
}

export interface ContactFilter {
  role?: 'visitor' | 'lead' | 'user';
  email?: string;
  user_id?: string;
  limit: number;
  cursor?: string;
  /** Oldest first (the default), or newest first: what an operator looks at. */
  order?: 'oldest' | 'newest';
}

/** Live contacts by id (creation) order; visitors only when asked for (spec: hidden from default lists). */
export async function listContacts(db: Db, appId: string, f: ContactFilter): Promise<ContactRow[]> {
  let q = db.selectFrom('contacts').selectAll().where('app_id', '=', appId).where('merged_into', 'is', null);
  q = f.role ? q.where('role', '=', f.role) : q.where('role', '!=', 'visitor');
  if (f.email !== undefined) q = q.where('email_norm', '=', f.email);
  if (f.user_id !== undefined) q = q.where('user_id', 'is not', null).where('user_id', '=', f.user_id);
  const newest = f.order === 'newest';
  if (f.cursor !== undefined) q = q.where('id', newest ? '<' : '>', f.cursor);
  return q.orderBy('id', newest ? 'desc' : 'asc').limit(f.limit + 1).execute();
}

// ---- attributes -------------------------------------------------------------------------------

export async function getAttributes(db: Db, contactId: string): Promise<Attributes> {
  const row = await db.selectFrom('contacts').select('attributes').where('id', '=', contactId).executeTakeFirst();
  return row ? sortedAttributes(parseAttributes(row.attributes)) : {};
}

/** Sets these attributes on the contact (others kept); call inside a transaction. */
export async function setAttributes(db: Db, contactId: string, attributes: Attributes): Promise<void> {
  if (Object.keys(attributes).length === 0) return;
  const row = await forUpdate(db, db.selectFrom('contacts').select('attributes').where('id', '=', contactId)).executeTakeFirst();
  if (!row) return;
  const { next, changed } = withAttributes(parseAttributes(row.attributes), attributes);
  if (changed) await db.updateTable('contacts').set({ attributes: encodeAttributes(next) }).where('id', '=', contactId).execute();
}

// ---- events -----------------------------------------------------------------------------------

export async function getEventSummaries(db: Db, contactId: string): Promise<({ name: string } & EventSummary)[]> {
  const row = await db.selectFrom('contacts').select('event_summaries').where('id', '=', contactId).executeTakeFirst();
  return row ? eventSummaryList(parseEventSummaries(row.event_summaries)) : [];
}

/** Adds one occurrence to a contact's summary for that event name; call inside a transaction. */
export async function recordEventOccurrence(db: Db, contactId: string, name: string, at: string): Promise<void> {
  const row = await forUpdate(db, db.selectFrom('contacts').select('event_summaries').where('id', '=', contactId)).executeTakeFirst();
  if (!row) return;
  const next = withOccurrence(parseEventSummaries(row.event_summaries), name, at);
  await db.updateTable('contacts').set({ event_summaries: encodeEventSummaries(next) }).where('id', '=', contactId).execute();
}
