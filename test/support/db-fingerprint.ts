/** A hash of every row of every table: equal before and after means a request wrote nothing. */
import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database } from '../../server-stub/storage/schema.ts';

const TABLES: (keyof Database)[] = ['apps', 'contacts', 'visitors', 'events', 'conversations', 'messages', 'merges', 'jobs'];

export async function dbFingerprint(db: Kysely<Database>): Promise<string> {
  const hash = createHash('sha256');
  for (const table of TABLES) {
    const rows = await db.selectFrom(table).selectAll().execute();
    const lines = rows.map((r) => JSON.stringify(r)).sort();
    hash.update(`${table}:${lines.join('\n')}\n`);
  }
  return hash.digest('hex');
}
