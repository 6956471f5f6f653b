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
import { checkMerge, type MergeTrigger } from '../domain/rules.ts';
import { findContact, type Db } from '../storage/contacts.ts';
import { forUpdate } from '../storage/row-locks.ts';
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

const CHUNK = 300;
const chunks = <T>(xs: readonly T[], n = CHUNK): T[][] => Array.from({ length: Math.ceil(xs.length / n) }, (_, i) => xs.slice(i * n, (i + 1) * n));

/**
 * Merges already validated (lead, user) pairs, set-based. Each lead appears once; several leads
 * may go into one user. Throws MergeRaceError if any lead was merged meanwhile.
 */
export async function mergeLeads(trx: Db, s: Services, appId: string, pairs: readonly { from: string; into: string }[], trigger: MergeTrigger): Promise<MergeView[]> {
  if (pairs.length === 0) return [];
  const now = s.clock.now().toISOString();
  const batchId = s.ids('mb');
  const froms = pairs.map((p) => p.from);
  for (const part of chunks(pairs)) {
    await trx.insertInto('merge_batch').values(part.map((p) => ({ batch_id: batchId, from_id: p.from, into_id: p.into }))).execute();
  }
  const batch = trx.selectFrom('merge_batch').where('batch_id', '=', batchId);
  const intoOf = (column: 'conversations.contact_id' | 'visitors.contact_id') =>
    sql<string>`(select into_id from merge_batch b where b.batch_id = ${batchId} and b.from_id = ${sql.ref(column)})`;

  const claimed = await trx.updateTable('contacts')
    .set({ merged_into: sql`(select into_id from merge_batch b where b.batch_id = ${batchId} and b.from_id = contacts.id)`, merged_at: now, merge_into_id: null, merge_trigger: null, updated_at: now })
    // `app_id || ''` still keeps the claim inside the app, but is no index key: given `app_id = ?`,
    // SQLite's planner read every contact of the app through (app_id, email_norm, role) for each
    // batch (3.4 s of a 78,000-lead bulk merge) instead of looking the batch's ids up by key.
    .where(sql<string>`app_id || ''`, '=', appId).where('id', 'in', batch.select('from_id')).where('merged_into', 'is', null).where('role', '!=', 'user')
    .executeTakeFirst();
  if (Number(claimed.numUpdatedRows) !== pairs.length) {
    await trx.deleteFrom('merge_batch').where('batch_id', '=', batchId).execute();
    throw new MergeRaceError('a lead of this batch was merged meanwhile');
  }

  // Per-lead counts for the audit entries (R13), read before anything moves.
  const conversations = new Map<string, number>();
  const events = new Map<string, number>();
  const attributes = new Map<string, number>();
  for (const part of chunks(froms, 1000)) {
    for (const r of await trx.selectFrom('conversations').select(['contact_id', (eb) => eb.fn.countAll<number>().as('n')]).where('contact_id', 'in', part).groupBy('contact_id').execute()) {
      conversations.set(r.contact_id, Number(r.n));
    }
    for (const r of await trx.selectFrom('event_summaries').select(['contact_id', (eb) => eb.fn.sum<number>('count').as('n')]).where('contact_id', 'in', part).groupBy('contact_id').execute()) {
      events.set(r.contact_id, Number(r.n));
    }
  }
  const attributesMoved = await carryAttributesOver(trx, pairs, batchId);
  for (const [from, n] of attributesMoved) attributes.set(from, n);

  await trx.updateTable('conversations').set({ contact_id: intoOf('conversations.contact_id') }).where('contact_id', 'in', batch.select('from_id')).execute();

  // Events: pre-aggregated per (user, name) so one statement never touches a row twice.
  await trx.insertInto('event_summaries').columns(['contact_id', 'name', 'count', 'first_at', 'last_at'])
    .expression(trx.selectFrom('event_summaries as e').innerJoin('merge_batch as b', 'b.from_id', 'e.contact_id')
      .select(['b.into_id', 'e.name', (eb) => eb.fn.sum<number>('e.count').as('count'), (eb) => eb.fn.min('e.first_at').as('first_at'), (eb) => eb.fn.max('e.last_at').as('last_at')])
      .where('b.batch_id', '=', batchId).groupBy(['b.into_id', 'e.name']))
    .onConflict((oc) => oc.columns(['contact_id', 'name']).doUpdateSet({
      count: sql`event_summaries.count + excluded.count`,
      first_at: sql`case when excluded.first_at < event_summaries.first_at then excluded.first_at else event_summaries.first_at end`,
      last_at: sql`case when excluded.last_at > event_summaries.last_at then excluded.last_at else event_summaries.last_at end`,
    })).execute();
  await trx.deleteFrom('event_summaries').where('contact_id', 'in', batch.select('from_id')).execute();

  if (trigger === 'cookie') {
    await trx.updateTable('visitors').set({ contact_id: intoOf('visitors.contact_id') }).where('contact_id', 'in', batch.select('from_id')).execute();
  } else {
    await trx.deleteFrom('visitors').where('contact_id', 'in', batch.select('from_id')).execute();
  }

  const rows: MergesTable[] = pairs.map((p) => ({
    id: s.ids('mrg'), app_id: appId, from_id: p.from, into_id: p.into, trigger,
    conversations_moved: conversations.get(p.from) ?? 0, events_moved: events.get(p.from) ?? 0, attributes_moved: attributes.get(p.from) ?? 0, created_at: now,
  }));
  for (const part of chunks(rows, 200)) await trx.insertInto('merges').values(part).execute();
  // Both ids, the trigger and the counts: what integrations need to follow a merge.
  await emitWebhookEvents(trx, s, appId, rows.map((m) => ({ type: 'contact.merged' as const, data: { merge_id: m.id, lead_id: m.from_id, user_id: m.into_id, trigger: m.trigger, conversations_moved: m.conversations_moved, events_moved: m.events_moved, attributes_moved: m.attributes_moved, merged_at: m.created_at } })));
  await trx.deleteFrom('merge_batch').where('batch_id', '=', batchId).execute();
  return rows.map(mergeView);
}

/**
 * R6 for attributes: the leads' objects are read after the claim (which locked their rows), the
 * users' locked (PostgreSQL), each lead's keys the user has no value for are copied in batch order
 * (between two leads of one batch, the first wins), and every changed object is written in one
 * statement through the work table. The leads' tombstones keep no attributes. Answers how many
 * attributes each lead moved.
 */
async function carryAttributesOver(trx: Db, pairs: readonly { from: string; into: string }[], batchId: string): Promise<Map<string, number>> {
  const objects = new Map<string, Attributes>();
  const read = async (ids: string[], lock: boolean) => {
    for (const part of chunks(ids, 1000)) {
      const q = trx.selectFrom('contacts').select(['id', 'attributes']).where('id', 'in', part);
      for (const r of await (lock ? forUpdate(trx, q) : q).execute()) objects.set(r.id, parseAttributes(r.attributes));
    }
  };
  await read(pairs.map((p) => p.from), false);
  await read([...new Set(pairs.map((p) => p.into))], true);
  const moved = new Map<string, number>();
  const written = new Map<string, Attributes>();
  for (const p of pairs) {
    const lead = objects.get(p.from) ?? {};
    if (Object.keys(lead).length === 0) continue;
    const carried = carryAttributes(written.get(p.into) ?? objects.get(p.into) ?? {}, lead);
    moved.set(p.from, carried.moved);
    if (carried.moved > 0) written.set(p.into, carried.next);
    written.set(p.from, {});
  }
  if (written.size === 0) return moved;
  const workId = `${batchId}:attributes`;
  const rows = [...written].map(([id, a]) => ({ batch_id: workId, from_id: id, into_id: id, attributes: encodeAttributes(a) }));
  for (const part of chunks(rows, 200)) await trx.insertInto('merge_batch').values(part).execute();
  await trx.updateTable('contacts')
    .set({ attributes: sql`(select b.attributes from merge_batch b where b.batch_id = ${workId} and b.from_id = contacts.id)` })
    .where('id', 'in', trx.selectFrom('merge_batch').select('from_id').where('batch_id', '=', workId)).execute();
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
