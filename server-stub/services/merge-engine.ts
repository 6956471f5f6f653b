/**
 * Executes lead-into-user merges (R6) inside the caller's transaction (R12): either all of it
 * happens or none. One set-based implementation serves a single merge and a bulk batch of a
 * thousand alike, so the carry-over rules are written once:
 * - conversations change owner, messages untouched;
 * - attributes are copied only where the user has no value for the key (never overwrite);
 * - event summaries combine per name: counts add, first_at the earlier, last_at the later;
 * - the lead becomes a tombstone pointing at the user;
 * - the lead's cookies open the user only after a cookie merge (R2), where the user proved who they
 *   are on that very browser. After an email, CSV, bulk, convert or explicit merge the browser that
 *   typed the email proved nothing: its cookies are unbound, or anyone could read a user's history
 *   by leaving their email in the widget.
 * Leads are claimed by a conditional update first, so a lead merged meanwhile is never merged twice.
 */
import { sql } from 'kysely';
import { carryAttributes, encodeAttributes, parseAttributes, type Attributes } from '../domain/attributes.ts';
import { carryEventSummaries, encodeEventSummaries, parseEventSummaries, type EventSummaries } from '../domain/event-summaries.ts';
import { checkMerge, type MergeTrigger } from '../domain/rules.ts';
import { findContact, type Db } from '../storage/contacts.ts';
import { forUpdate } from '../storage/row-locks.ts';
import { chunks, rowsPerInsert } from '../storage/batching.ts';
import type { MergesTable } from '../storage/schema.ts';
import { ServiceError, notFound, type Services } from './context.ts';
import { emitWebhookEvents } from './webhooks.ts';

export interface MergeView {
  id: string;
  app_id: string;
  from: string;
  into: string;
  trigger: MergeTrigger;
  conversations_moved: number;
  events_moved: number;
  attributes_moved: number;
  created_at: string;
}

export function mergeView(m: MergesTable): MergeView {
  return { id: m.id, app_id: m.app_id, from: m.from_id, into: m.into_id, trigger: m.trigger, conversations_moved: m.conversations_moved, events_moved: m.events_moved, attributes_moved: m.attributes_moved, created_at: m.created_at };
}

export type MergeOutcome = { kind: 'merged'; merge: MergeView } | { kind: 'noop'; merge: MergeView | null };

/** Thrown when a lead of a batch was merged by someone else meanwhile; the caller's transaction rolls back and may retry. */
export class MergeRaceError extends Error {}

/**
 * Merges `fromId` into `intoId`. Throws ServiceError for pairs the rules refuse (self, user into
 * user, into a non-user); answers `noop` when the lead was merged already.
 */
export async function mergeLead(trx: Db, s: Services, appId: string, fromId: string, intoId: string, trigger: MergeTrigger): Promise<MergeOutcome> {
  const from = await findContact(trx, appId, fromId);
  const into = await findContact(trx, appId, intoId);
  if (!from) throw notFound('contact `from`');
  if (!into) throw notFound('contact `into`');
  const check = checkMerge(from, into);
  if (!check.ok) {
    if (check.code === 'already-merged') return { kind: 'noop', merge: await findMergeFrom(trx, fromId) };
    throw new ServiceError(check.code === 'self' ? 400 : 409, check.code, check.detail);
  }
  try {
    const [merge] = await mergeLeads(trx, s, appId, [{ from: fromId, into: intoId }], trigger);
    return { kind: 'merged', merge: merge! };
  } catch (error) {
    if (error instanceof MergeRaceError) return { kind: 'noop', merge: await findMergeFrom(trx, fromId) };
    throw error;
  }
}

/**
 * Merges already validated (lead, user) pairs, set-based. Each lead appears once; several leads
 * may go into one user. Throws MergeRaceError if any lead was merged meanwhile.
 */
export async function mergeLeads(trx: Db, s: Services, appId: string, pairs: readonly { from: string; into: string }[], trigger: MergeTrigger): Promise<MergeView[]> {
  if (pairs.length === 0) return [];
  const now = s.clock.now().toISOString();
  const batchId = s.ids('mb');
  const froms = pairs.map((p) => p.from);
  for (const part of chunks(pairs, rowsPerInsert(trx, 3))) {
    await trx.insertInto('merge_batch').values(part.map((p) => ({ batch_id: batchId, from_id: p.from, into_id: p.into }))).execute();
  }
  const batch = trx.selectFrom('merge_batch').where('batch_id', '=', batchId);

  // The leads' and then the users' attributes and event summaries, read before the claim empties
  // the leads'. On PostgreSQL the rows are locked, leads first (as a convert, or a ping that marks
  // a lead and then sets its user's attributes, takes them) and each kind in id order; a transaction
  // that took the two the other way round meets a deadlock, and storage/transactions.ts runs the
  // one PostgreSQL aborts again. On SQLite the work-table insert above already holds the write lock.
  const leadData = await readCarried(trx, froms, true);
  const userData = await readCarried(trx, [...new Set(pairs.map((p) => p.into))], true);

  const claimed = await trx.updateTable('contacts').from('merge_batch as b')
    .set((eb) => ({
      merged_into: eb.ref('b.into_id'),
      merged_at: now, merge_into_id: null, merge_trigger: null, updated_at: now,
      // The tombstone keeps neither: what it had is now the user's (or was the user's already).
      attributes: '{}', event_summaries: '{}',
    }))
    .where('b.batch_id', '=', batchId).whereRef('b.from_id', '=', 'contacts.id')
    // `app_id || ''` still keeps the claim inside the app, but is no index key: given `app_id = ?`,
    // SQLite's planner read every contact of the app through (app_id, email_norm, role) for each
    // batch (EXPLAIN QUERY PLAN shows it) instead of looking the batch's ids up by key.
    .where(sql<string>`contacts.app_id || ''`, '=', appId).where('contacts.merged_into', 'is', null).where('contacts.role', '!=', 'user')
    .executeTakeFirst();
  if (Number(claimed.numUpdatedRows) !== pairs.length) {
    await trx.deleteFrom('merge_batch').where('batch_id', '=', batchId).execute();
    throw new MergeRaceError('a lead of this batch was merged meanwhile');
  }

  // Per-lead counts for the audit entries (R13), read before anything moves.
  const conversations = new Map<string, number>();
  for (const part of chunks(froms, 1000)) {
    for (const r of await trx.selectFrom('conversations').select(['contact_id', (eb) => eb.fn.countAll<number>().as('n')]).where('contact_id', 'in', part).groupBy('contact_id').execute()) {
      conversations.set(r.contact_id, Number(r.n));
    }
  }
  const moved = await carryOver(trx, pairs, leadData, userData, batchId);

  // UPDATE … FROM the work table (SQLite and PostgreSQL alike): each batch row finds its rows by
  // index. As `where contact_id in (select …)`, PostgreSQL, whose statistics see the work table
  // empty, hashed the batch and read the whole table on every batch.
  await trx.updateTable('conversations').from('merge_batch as b').set((eb) => ({ contact_id: eb.ref('b.into_id') }))
    .where('b.batch_id', '=', batchId).whereRef('b.from_id', '=', 'conversations.contact_id').execute();

  if (trigger === 'cookie') {
    await trx.updateTable('visitors').from('merge_batch as b').set((eb) => ({ contact_id: eb.ref('b.into_id') }))
      .where('b.batch_id', '=', batchId).whereRef('b.from_id', '=', 'visitors.contact_id').execute();
  } else {
    await trx.deleteFrom('visitors').where('contact_id', 'in', batch.select('from_id')).execute();
  }

  const rows: MergesTable[] = pairs.map((p) => ({
    id: s.ids('mrg'), app_id: appId, from_id: p.from, into_id: p.into, trigger,
    conversations_moved: conversations.get(p.from) ?? 0, events_moved: moved.get(p.from)?.events ?? 0, attributes_moved: moved.get(p.from)?.attributes ?? 0, created_at: now,
  }));
  for (const part of chunks(rows, rowsPerInsert(trx, 9))) await trx.insertInto('merges').values(part).execute();
  // Both ids, the trigger and the counts: what integrations need to follow a merge.
  await emitWebhookEvents(trx, s, appId, rows.map((m) => ({ type: 'contact.merged' as const, data: { merge_id: m.id, lead_id: m.from_id, user_id: m.into_id, trigger: m.trigger, conversations_moved: m.conversations_moved, events_moved: m.events_moved, attributes_moved: m.attributes_moved, merged_at: m.created_at } })));
  await trx.deleteFrom('merge_batch').where('batch_id', '=', batchId).execute();
  return rows.map(mergeView);
}

interface Carried {
  attributes: Attributes;
  events: EventSummaries;
}

async function readCarried(trx: Db, ids: readonly string[], lock: boolean): Promise<Map<string, Carried>> {
  const out = new Map<string, Carried>();
  for (const part of chunks([...ids].sort(), 1000)) {
    const q = trx.selectFrom('contacts').select(['id', 'attributes', 'event_summaries']).where('id', 'in', part).orderBy('id');
    for (const r of await (lock ? forUpdate(trx, q) : q).execute()) {
      out.set(r.id, { attributes: parseAttributes(r.attributes), events: parseEventSummaries(r.event_summaries) });
    }
  }
  return out;
}

/**
 * R6 for attributes and events, in batch order: each lead's attributes the user has no value for
 * are copied (between two leads of one batch, the first wins), and its event summaries fold into
 * the user's. Each changed user row is rewritten once, all in one statement through the work
 * table. Answers what each lead carried over.
 */
async function carryOver(trx: Db, pairs: readonly { from: string; into: string }[], leads: Map<string, Carried>, users: Map<string, Carried>, batchId: string): Promise<Map<string, { attributes: number; events: number }>> {
  const moved = new Map<string, { attributes: number; events: number }>();
  const changed = new Set<string>();
  for (const p of pairs) {
    const lead = leads.get(p.from);
    const user = users.get(p.into);
    if (!lead || !user) continue;
    const attributes = carryAttributes(user.attributes, lead.attributes);
    const events = carryEventSummaries(user.events, lead.events);
    moved.set(p.from, { attributes: attributes.moved, events: events.moved });
    if (attributes.moved === 0 && events.moved === 0) continue;
    users.set(p.into, { attributes: attributes.next, events: events.next });
    changed.add(p.into);
  }
  if (changed.size === 0) return moved;
  const workId = `${batchId}:carried`;
  const rows = [...changed].map((id) => ({
    batch_id: workId, from_id: id, into_id: id, attributes: encodeAttributes(users.get(id)!.attributes), event_summaries: encodeEventSummaries(users.get(id)!.events),
  }));
  for (const part of chunks(rows, rowsPerInsert(trx, 5))) await trx.insertInto('merge_batch').values(part).execute();
  await trx.updateTable('contacts').from('merge_batch as b').set((eb) => ({ attributes: eb.fn.coalesce('b.attributes', 'contacts.attributes'), event_summaries: eb.fn.coalesce('b.event_summaries', 'contacts.event_summaries') }))
    .where('b.batch_id', '=', workId).whereRef('b.from_id', '=', 'contacts.id').execute();
  await trx.deleteFrom('merge_batch').where('batch_id', '=', workId).execute();
  return moved;
}

async function findMergeFrom(db: Db, fromId: string): Promise<MergeView | null> {
  const row = await db.selectFrom('merges').selectAll().where('from_id', '=', fromId).executeTakeFirst();
  return row ? mergeView(row) : null;
}

/**
 * Tells open streams after the transaction committed. After a cookie merge the lead's widgets
 * follow the user; after any other merge their cookie opens nothing any more, so they are only
 * told to start afresh.
 */
export function announceMerge(s: Services, merge: MergeView): void {
  s.hub.publish(merge.from, { event: 'merge', data: { from: merge.from, into: merge.into, trigger: merge.trigger } });
  if (merge.trigger === 'cookie') s.hub.follow(merge.from, merge.into);
}
