import { describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { transaction } from '../../../server-stub/storage/transactions.ts';
import { startTestServer, testDialect } from '../../support/server-app.ts';

/** Just enough of a kysely instance: each transaction runs `work` once, failing as told. */
function fakeDb(failures: unknown[]) {
  let runs = 0;
  const db = {
    transaction: () => ({
      execute: async <T>(work: (trx: unknown) => Promise<T>) => {
        runs++;
        const failure = failures.shift();
        if (failure !== undefined) throw failure;
        return work({});
      },
    }),
  };
  return { db: db as never, runs: () => runs };
}

describe('transactions PostgreSQL aborts for a conflict run again', () => {
  it('a deadlock (40P01) or a serialization failure (40001) is run again, and its result returned', async () => {
    const { db, runs } = fakeDb([{ code: '40P01' }, { code: '40001' }]);
    expect(await transaction(db, async () => 'done')).toBe('done');
    expect(runs()).toBe(3);
  });

  it('any other error is thrown at once', async () => {
    const { db, runs } = fakeDb([{ code: '23505' }]);
    await expect(transaction(db, async () => 'done')).rejects.toEqual({ code: '23505' });
    expect(runs()).toBe(1);
  });

  it('gives up after the attempts it was given, with the last error', async () => {
    const { db, runs } = fakeDb([{ code: '40P01' }, { code: '40P01' }, { code: '40P01', n: 3 }]);
    await expect(transaction(db, async () => 'done', 3)).rejects.toEqual({ code: '40P01', n: 3 });
    expect(runs()).toBe(3);
  });

  it.skipIf(testDialect !== 'postgres')('two transactions that lock two contacts in opposite orders both finish', async () => {
    const t = await startTestServer();
    try {
      const app = await t.createApp();
      const db = t.parley.services.db;
      const now = '2026-01-01T00:00:00.000Z';
      const row = (id: string) => ({
        id, app_id: app.id, role: 'lead' as const, user_id: null, email: null, email_norm: null, name: null, created_via: 'messenger' as const, created_at: now,
        updated_at: now, last_seen_at: null, merged_into: null, merged_at: null, merge_into_id: null, merge_trigger: null, attributes: '{}', event_summaries: '{}',
      });
      await db.insertInto('contacts').values([row('a'), row('b')]).execute();
      // Each takes its first row, waits until the other has too, then asks for the other's row.
      let holding = 0;
      const bothHolding = async () => {
        holding++;
        for (let i = 0; i < 100 && holding < 2; i++) await new Promise((r) => setTimeout(r, 10));
      };
      const lockBoth = (first: string, second: string, name: string) => transaction(db, async (trx) => {
        await sql`select id from contacts where id = ${first} for update`.execute(trx);
        await bothHolding();
        await sql`select id from contacts where id = ${second} for update`.execute(trx);
        await trx.updateTable('contacts').set({ name: sql`coalesce(name, '') || ${name}` }).where('id', '=', first).execute();
      });
      await Promise.all([lockBoth('a', 'b', 'x'), lockBoth('b', 'a', 'y')]);
      const names = await db.selectFrom('contacts').select(['id', 'name']).orderBy('id').execute();
      expect(names).toEqual([{ id: 'a', name: 'x' }, { id: 'b', name: 'y' }]);
    } finally {
      await t.close();
    }
  });
});
