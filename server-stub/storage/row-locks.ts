/**
 * Read-modify-write of a row (a contact's attributes object) needs the row locked on PostgreSQL,
 * where other connections commit in between; on SQLite a transaction already runs alone on this
 * process's one connection, and SQLite has no FOR UPDATE.
 */
import { PostgresAdapter, type Kysely } from 'kysely';

export function isPostgres(db: Kysely<any>): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter;
}

export function forUpdate<Q extends { forUpdate(): Q }>(db: Kysely<any>, query: Q): Q {
  return isPostgres(db) ? query.forUpdate() : query;
}
