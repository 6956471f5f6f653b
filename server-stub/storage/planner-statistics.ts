/**
 * PostgreSQL plans each query from table statistics that autovacuum refreshes only after a table
 * has changed by a tenth, and then only on its next round. A bulk import into a fresh app outruns
 * it: with statistics that still say the app has no users, the planner reads every user through
 * (app_id, role) or (app_id, user_id IS NOT NULL) for each batch's lookup instead of probing the
 * batch's keys, and the import slows down as the table grows (EXPLAIN ANALYZE of a batch lookup
 * shows it; `BENCH_DB=postgres npm run bench:merge` measures the import). SQLite plans from its indexes' shapes alone,
 * so this is PostgreSQL only.
 */
import { sql, type Kysely } from 'kysely';
import { isPostgres } from './row-locks.ts';

export async function refreshStatistics(db: Kysely<any>, table: 'contacts'): Promise<void> {
  if (isPostgres(db)) await sql`analyze ${sql.table(table)}`.execute(db);
}

/**
 * Refreshes once the job has written `first` rows, then each time the rows written have grown
 * fourfold: a handful of ANALYZE runs for any size of import, each after the table changed enough
 * to matter.
 */
export function statisticsRefresher(db: Kysely<any>, table: 'contacts', first = 1000): (rowsWritten: number) => Promise<void> {
  let next = first;
  return async (rowsWritten) => {
    if (rowsWritten < next) return;
    while (next <= rowsWritten) next *= 4;
    await refreshStatistics(db, table);
  };
}
