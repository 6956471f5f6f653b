/**
 * The background merge worker (R5): runs the merge jobs that pings enqueue. Jobs live in the
 * database, so pending merges survive a restart; each job's merge and its completion commit in one
 * transaction (R12), so a job that crashed half-way simply runs again.
 */
import { claimJobs, completeJob, failJob, type JobRow } from '../storage/jobs.ts';
import { findContact, usersWithEmail } from '../storage/contacts.ts';
import { markHolds } from '../domain/rules.ts';
import { announceMerge, mergeLead, type MergeView } from './merge-engine.ts';
import type { Services } from './context.ts';
import { transaction } from '../storage/transactions.ts';

export interface WorkerOptions {
  pollMs?: number;
  leaseMs?: number;
  maxAttempts?: number;
  onError?: (error: unknown, job: JobRow) => void;
}

export interface MergeWorker {
  /** Look for work now instead of at the next poll. */
  wake(): void;
  /** Runs until no runnable job is left (tests, CLI). */
  drain(): Promise<void>;
  stop(): Promise<void>;
}

export function startMergeWorker(s: Services, options: WorkerOptions = {}): MergeWorker {
  const pollMs = options.pollMs ?? 500;
  const leaseMs = options.leaseMs ?? 30_000;
  const maxAttempts = options.maxAttempts ?? 8;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | null = null;
  let again = false;

  async function runJob(job: JobRow): Promise<void> {
    const { from } = JSON.parse(job.payload) as { from: string };
    let merged: MergeView | null = null;
    await transaction(s.db, async (trx) => {
      const lead = await findContact(trx, job.app_id, from);
      if (lead && lead.merged_into === null && lead.merge_into_id !== null && lead.merge_trigger !== null) {
        const users = lead.email_norm === null ? [] : await usersWithEmail(trx, job.app_id, lead.email_norm);
        if (markHolds(lead, users)) {
          const outcome = await mergeLead(trx, s, job.app_id, lead.id, lead.merge_into_id, lead.merge_trigger);
          if (outcome.kind === 'merged') merged = outcome.merge;
        } else {
          // The email now matches several users (or none): the lead waits for an operator, as in a bulk merge.
          // Only the mark that was read: a cookie mark committed meanwhile (PostgreSQL) stays.
          await trx.updateTable('contacts').set({ merge_into_id: null, merge_trigger: null, updated_at: s.clock.now().toISOString() })
            .where('id', '=', lead.id).where('merge_into_id', '=', lead.merge_into_id).where('merge_trigger', '=', lead.merge_trigger).execute();
        }
      }
      await completeJob(trx, job.id, s.clock.now().toISOString());
    });
    if (merged) announceMerge(s, merged);
  }

  async function tick(): Promise<void> {
    for (;;) {
      const jobs = await claimJobs(s.db, s.clock.now(), leaseMs, 50);
      if (jobs.length === 0) return;
      for (const job of jobs) {
        try {
          await runJob(job);
        } catch (error) {
          options.onError?.(error, job);
          const delay = Math.min(60_000, 250 * 2 ** job.attempts);
          await failJob(s.db, job, error instanceof Error ? error.message : String(error), s.clock.now(), delay, maxAttempts);
        }
      }
    }
  }

  function run(): Promise<void> {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          await tick();
        } while (again && !stopped);
      } finally {
        running = null;
      }
    })();
    return running;
  }

  function schedule(): void {
    if (stopped) return;
    timer = setTimeout(() => {
      run().catch((error: unknown) => console.error(JSON.stringify({ level: 'error', msg: 'merge worker tick failed', error: String(error) }))).finally(schedule);
    }, pollMs);
    timer.unref();
  }
  schedule();

  return {
    wake() {
      if (!stopped) run().catch((error: unknown) => console.error(JSON.stringify({ level: 'error', msg: 'merge worker failed', error: String(error) })));
    },
    async drain() {
      await run();
      while (running) await running;
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      while (running) await running.catch(() => undefined);
    },
  };
}
