/**
 * A durable job queue in the database: pending work survives a restart. A job is claimed with a
 * conditional update, so two workers (or two instances) never run the same job at once, and a
 * claim whose lease ran out (its worker died) can be taken again.
 */
import type { Db } from './contacts.ts';
import type { JobsTable } from './schema.ts';

export type JobRow = JobsTable;

export async function enqueueJob(db: Db, job: Pick<JobRow, 'id' | 'app_id' | 'kind' | 'dedupe_key' | 'payload'>, now: string): Promise<boolean> {
  const r = await db
    .insertInto('jobs')
    .values({ ...job, status: 'pending', attempts: 0, run_after: now, locked_until: null, last_error: null, created_at: now, updated_at: now })
    // Finished work with the same key is opened again (a lead marked anew); live work is left alone.
    .onConflict((oc) => oc.column('dedupe_key')
      .doUpdateSet({ status: 'pending', attempts: 0, run_after: now, last_error: null, updated_at: now })
      .where('jobs.status', 'in', ['done', 'failed']))
    .executeTakeFirst();
  return Number(r.numInsertedOrUpdatedRows ?? 0) === 1;
}

/** Claims up to `limit` runnable jobs for `leaseMs`. */
export async function claimJobs(db: Db, now: Date, leaseMs: number, limit: number): Promise<JobRow[]> {
  const nowIso = now.toISOString();
  const candidates = await db
    .selectFrom('jobs')
    .selectAll()
    .where((eb) => eb.or([
      eb.and([eb('status', '=', 'pending'), eb('run_after', '<=', nowIso)]),
      eb.and([eb('status', '=', 'running'), eb('locked_until', '<', nowIso)]),
    ]))
    .orderBy('run_after')
    .limit(limit)
    .execute();
  const lockedUntil = new Date(now.getTime() + leaseMs).toISOString();
  const claimed: JobRow[] = [];
  for (const job of candidates) {
    const r = await db
      .updateTable('jobs')
      .set({ status: 'running', locked_until: lockedUntil, attempts: job.attempts + 1, updated_at: nowIso })
      .where('id', '=', job.id)
      .where('status', '=', job.status)
      .where('attempts', '=', job.attempts)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) === 1) claimed.push({ ...job, status: 'running', locked_until: lockedUntil, attempts: job.attempts + 1 });
  }
  return claimed;
}

export async function completeJob(db: Db, id: string, now: string): Promise<void> {
  await db.updateTable('jobs').set({ status: 'done', locked_until: null, updated_at: now }).where('id', '=', id).execute();
}

/** Puts a failed job back with a delay, or gives up after `maxAttempts`. */
export async function failJob(db: Db, job: JobRow, error: string, now: Date, retryDelayMs: number, maxAttempts: number): Promise<void> {
  const giveUp = job.attempts >= maxAttempts;
  await db
    .updateTable('jobs')
    .set({
      status: giveUp ? 'failed' : 'pending',
      locked_until: null,
      last_error: error.slice(0, 1000),
      run_after: new Date(now.getTime() + retryDelayMs).toISOString(),
      updated_at: now.toISOString(),
    })
    .where('id', '=', job.id)
    .execute();
}
