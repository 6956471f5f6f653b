/**
 * Executes one lead-into-user merge (R6) inside the caller's transaction (R12): either all of it
 * happens or none. The lead is claimed by a conditional update first, so a second merge of the same
 * lead, concurrent or later, finds it taken and does nothing.
 */
import { checkMerge, planCarryOver, type MergeTrigger } from '../domain/rules.ts';
import { findContact, type Db } from '../storage/contacts.ts';
import type { MergesTable } from '../storage/schema.ts';
import { ServiceError, notFound, type Services } from './context.ts';

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
  const now = s.clock.now().toISOString();

  const claimed = await trx.updateTable('contacts')
    .set({ merged_into: intoId, merged_at: now, merge_into_id: null, merge_trigger: null, updated_at: now })
    .where('id', '=', fromId).where('merged_into', 'is', null).executeTakeFirst();
  if (Number(claimed.numUpdatedRows) !== 1) return { kind: 'noop', merge: await findMergeFrom(trx, fromId) };

  const moved = await trx.updateTable('conversations').set({ contact_id: intoId }).where('contact_id', '=', fromId).executeTakeFirst();
  const conversationsMoved = Number(moved.numUpdatedRows);

  const leadAttrs = (await trx.selectFrom('attributes').select('key').where('contact_id', '=', fromId).execute()).map((r) => r.key);
  const userAttrs = (await trx.selectFrom('attributes').select('key').where('contact_id', '=', intoId).execute()).map((r) => r.key);
  const leadEvents = await trx.selectFrom('event_summaries').selectAll().where('contact_id', '=', fromId).execute();
  const userEvents = await trx.selectFrom('event_summaries').selectAll().where('contact_id', '=', intoId).execute();
  const plan = planCarryOver(leadAttrs, userAttrs, leadEvents, userEvents);

  if (plan.attributesToMove.length > 0) {
    await trx.updateTable('attributes').set({ contact_id: intoId }).where('contact_id', '=', fromId).where('key', 'in', plan.attributesToMove).execute();
  }
  await trx.deleteFrom('attributes').where('contact_id', '=', fromId).execute();
  if (plan.eventsToMove.length > 0) {
    await trx.updateTable('event_summaries').set({ contact_id: intoId }).where('contact_id', '=', fromId).where('name', 'in', plan.eventsToMove).execute();
  }
  for (const e of plan.eventsToCombine) {
    await trx.updateTable('event_summaries').set({ count: e.count, first_at: e.first_at, last_at: e.last_at }).where('contact_id', '=', intoId).where('name', '=', e.name).execute();
  }
  await trx.deleteFrom('event_summaries').where('contact_id', '=', fromId).execute();
  // Cookies of the lead now open the user directly (the tombstone would get there too, one hop later).
  await trx.updateTable('visitors').set({ contact_id: intoId }).where('contact_id', '=', fromId).execute();

  const row: MergesTable = {
    id: s.ids('mrg'), app_id: appId, from_id: fromId, into_id: intoId, trigger,
    conversations_moved: conversationsMoved, events_moved: plan.eventsMoved, attributes_moved: plan.attributesToMove.length, created_at: now,
  };
  await trx.insertInto('merges').values(row).execute();
  return { kind: 'merged', merge: mergeView(row) };
}

async function findMergeFrom(db: Db, fromId: string): Promise<MergeView | null> {
  const row = await db.selectFrom('merges').selectAll().where('from_id', '=', fromId).executeTakeFirst();
  return row ? mergeView(row) : null;
}

/** Tells open streams after the transaction committed: the lead's widgets follow the user. */
export function announceMerge(s: Services, merge: MergeView): void {
  s.hub.publish(merge.from, { event: 'merge', data: { from: merge.from, into: merge.into, trigger: merge.trigger } });
  s.hub.follow(merge.from, merge.into);
}

/** Runs `fn` in one transaction. */
export function inTransaction<T>(s: Services, fn: (trx: Db) => Promise<T>): Promise<T> {
  return s.db.transaction().execute(fn);
}
