import { randomBytes } from 'node:crypto';
import SQLite from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { migrationProvider } from '../../../server-stub/storage/migrations.ts';
import { FairSqliteDialect } from '../../../server-stub/storage/sqlite-dialect.ts';
import { testDialect, testPostgresUrl } from '../../support/server-app.ts';

/** A bare database at any migration, on the dialect this test project runs on. */
async function bareDatabase(): Promise<{ db: Kysely<any>; migrator: Migrator; close(): Promise<void> }> {
  if (testDialect === 'sqlite') {
    const db = new Kysely<any>({ dialect: new SqliteDialect({ database: new SQLite(':memory:') }) });
    return { db, migrator: new Migrator({ db, provider: migrationProvider }), close: () => db.destroy() };
  }
  const { default: pg } = await import('pg');
  const schema = `parley_migrate_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: testPostgresUrl });
  await admin.connect();
  await admin.query(`create schema ${schema}`);
  const db = new Kysely<any>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: testPostgresUrl, max: 2, options: `-c search_path=${schema}` }) }) });
  return {
    db,
    migrator: new Migrator({ db, provider: migrationProvider, migrationTableSchema: schema }),
    async close() {
      await db.destroy();
      await admin.query(`drop schema ${schema} cascade`);
      await admin.end();
    },
  };
}

describe('migrations', () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => close?.());

  /** A database migrated up to `migration`, with one app and two leads: `with` and `without`. */
  async function twoContactsAt(migration: string): Promise<{ db: Kysely<any>; migrator: Migrator }> {
    const bare = await bareDatabase();
    close = bare.close;
    expect((await bare.migrator.migrateTo(migration)).error).toBeUndefined();
    const now = '2026-01-01T00:00:00.000Z';
    await bare.db.insertInto('apps').values({ id: 'a', name: 'A', admin_token: 't', identity_secret: 's', webhook_secret: 'w', created_at: now }).execute();
    const contact = (id: string) => ({ id, app_id: 'a', role: 'lead', created_via: 'messenger', created_at: now, updated_at: now });
    await bare.db.insertInto('contacts').values([contact('with'), contact('without')]).execute();
    return bare;
  }

  it('0007 moves every attribute row onto its contact as one JSON object, values unchanged', async () => {
    const { db, migrator } = await twoContactsAt('0006_drop_user_id_role_index');
    await db.insertInto('attributes').values([
      { contact_id: 'with', key: 'plan', value: JSON.stringify('pro') },
      { contact_id: 'with', key: 'score', value: JSON.stringify(42) },
      { contact_id: 'with', key: 'vip', value: JSON.stringify(null) },
      { contact_id: 'with', key: 'quote "x"', value: JSON.stringify('é\\n') },
    ]).execute();

    const { error, results } = await migrator.migrateToLatest();
    expect(error).toBeUndefined();
    expect(results?.map((r) => r.migrationName)).toContain('0007_attributes_on_contact');
    const rows = await db.selectFrom('contacts').select(['id', 'attributes']).orderBy('id').execute();
    expect(rows.map((r) => [r.id, JSON.parse(r.attributes)])).toEqual([
      ['with', { plan: 'pro', score: 42, vip: null, 'quote "x"': 'é\\n' }],
      ['without', {}],
    ]);
    // The table is gone: nothing can read or write attributes the old way any more.
    await expect(sql`select count(*) from attributes`.execute(db)).rejects.toThrow();
  });

  it('0008 moves every event summary row onto its contact, counts and times unchanged', async () => {
    const { db, migrator } = await twoContactsAt('0007_attributes_on_contact');
    await db.insertInto('event_summaries').values([
      { contact_id: 'with', name: 'viewed', count: 7, first_at: '2026-01-02T00:00:00.000Z', last_at: '2026-01-09T00:00:00.000Z' },
      { contact_id: 'with', name: 'paid "x"', count: 1, first_at: '2026-01-05T00:00:00.000Z', last_at: '2026-01-05T00:00:00.000Z' },
    ]).execute();

    expect((await migrator.migrateToLatest()).error).toBeUndefined();
    const rows = await db.selectFrom('contacts').select(['id', 'event_summaries']).orderBy('id').execute();
    expect(rows.map((r) => [r.id, JSON.parse(r.event_summaries)])).toEqual([
      ['with', {
        viewed: { count: 7, first_at: '2026-01-02T00:00:00.000Z', last_at: '2026-01-09T00:00:00.000Z' },
        'paid "x"': { count: 1, first_at: '2026-01-05T00:00:00.000Z', last_at: '2026-01-05T00:00:00.000Z' },
      }],
      ['without', {}],
    ]);
    await expect(sql`select count(*) from event_summaries`.execute(db)).rejects.toThrow();
  });

  it('on SQLite a migration that fails halfway leaves nothing of itself behind (the next start can run it again)', async () => {
    const db = new Kysely<any>({ dialect: new FairSqliteDialect(new SQLite(':memory:'), () => undefined) });
    close = () => db.destroy();
    await db.schema.createTable('t').addColumn('id', 'integer').execute();
    let fail = true;
    const provider = {
      getMigrations: async () => ({
        '0001_add_then_fail': {
          async up(trx: Kysely<any>) {
            await trx.schema.alterTable('t').addColumn('added', 'text').execute();
            if (fail) throw new Error('the data step failed');
          },
        },
      }),
    };
    expect((await new Migrator({ db, provider }).migrateToLatest()).error).toBeDefined();
    const columns = async () => (await sql<{ name: string }>`select name from pragma_table_info('t')`.execute(db)).rows.map((r) => r.name);
    expect(await columns()).toEqual(['id']);
    fail = false;
    expect((await new Migrator({ db, provider }).migrateToLatest()).error).toBeUndefined();
    expect(await columns()).toEqual(['id', 'added']);
  });
});
