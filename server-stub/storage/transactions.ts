/**
 * Transactions that PostgreSQL may abort for a lock cycle. Attributes and event summaries live on
 * the contact row, so a merge writes both the lead's row and the user's; a login ping, an import
 * or a convert may take the same two rows the other way round. PostgreSQL then aborts one of them
 * (40P01, deadlock detected; 40001 for a serialization failure), and the right answer is to run it
 * again, which sees the other's outcome (a lead merged meanwhile, say) and does what is still due.
 * SQLite runs one transaction at a time in this process and never reports these codes.
 */
import type { Kysely, Transaction } from 'kysely';

const RETRYABLE = new Set(['40P01', '40001']);

export function isRetryableConflict(error: unknown): boolean {
  return typeof error === 'object' && error !== null && RETRYABLE.has(String((error as { code?: unknown }).code));
}

/** Runs `work` in a transaction, again (up to `attempts` in all) when PostgreSQL aborted it for a conflict. */
export async function transaction<DB, T>(db: Kysely<DB>, work: (trx: Transaction<DB>) => Promise<T>, attempts = 4): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.transaction().execute(work);
    } catch (error) {
      if (attempt >= attempts || !isRetryableConflict(error)) throw error;
      // A short random wait, so the two that met do not meet again at once.
      await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 20 * attempt));
    }
  }
}
