/**
 * Splitting a batch's rows and keys into statements. How many rows one multi-row INSERT carries. SQLite keeps a prepared statement cached only under
 * 1,000 parameters (storage/sqlite-dialect.ts), and preparing a longer one afresh each time costs
 * more than the extra statements; PostgreSQL takes up to 65,535 parameters, and there each
 * statement is a round trip to the server.
 */
import type { Kysely } from 'kysely';
import { isPostgres } from './row-locks.ts';

const SQLITE_PARAMETERS = 999;
const POSTGRES_PARAMETERS = 30_000;

/** `xs` in consecutive slices of at most `n` (one statement each). */
export const chunks = <T>(xs: readonly T[], n: number): T[][] => Array.from({ length: Math.ceil(xs.length / n) }, (_, i) => xs.slice(i * n, (i + 1) * n));

export function rowsPerInsert(db: Kysely<any>, columns: number): number {
  return Math.max(1, Math.floor((isPostgres(db) ? POSTGRES_PARAMETERS : SQLITE_PARAMETERS) / columns));
}
