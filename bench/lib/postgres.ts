/**
 * PostgreSQL for the benches: which databases a bench runs on (`--db sqlite|postgres|both` or
 * BENCH_DB; default sqlite), and a fresh schema per run that is dropped at the end, even when the
 * bench fails or is stopped.
 *
 * The server is BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/test) and must be on
 * loopback. Every connection a bench makes, its own and the product's in its child processes, is
 * tagged with application_name = the schema name (PGAPPNAME), so the cleanup can end exactly those
 * sessions before it drops the schema. A schema left behind by a bench that was SIGKILLed is
 * dropped by the next bench run once it is older than 6 hours (its name carries its creation time).
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { repoDir } from './child.ts';

export type BenchDb = 'sqlite' | 'postgres';

export const DB_LABEL: Record<BenchDb, string> = { sqlite: 'SQLite', postgres: 'PostgreSQL' };

export const PG_URL = process.env['BENCH_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

/** The databases to run on, from `--db X` / `--db=X` in argv, else BENCH_DB, else sqlite. */
export function benchDbs(argv: readonly string[] = process.argv): BenchDb[] {
  let value: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--db') value = argv[i + 1];
    else if (argv[i]!.startsWith('--db=')) value = argv[i]!.slice(5);
  }
  value = (value ?? process.env['BENCH_DB'] ?? 'sqlite').trim().toLowerCase();
  if (value === 'sqlite') return ['sqlite'];
  if (value === 'postgres' || value === 'postgresql' || value === 'pg') return ['postgres'];
  if (value === 'both' || value === 'all') return ['sqlite', 'postgres'];
  throw new Error(`--db / BENCH_DB must be sqlite, postgres or both (got ${value})`);
}

function checkLoopback(url: string): void {
  const host = new URL(url).hostname;
  if (!['127.0.0.1', 'localhost', '[::1]', '::1'].includes(host)) throw new Error(`BENCH_PG_URL must point at 127.0.0.1 (got host ${host})`);
}

/** A short-lived client: loopback only, 5 s to connect, 60 s a statement (the generator's batches are far below that). */
export async function pgClient(schema?: string): Promise<pg.Client> {
  checkLoopback(PG_URL);
  const client = new pg.Client({
    connectionString: PG_URL,
    connectionTimeoutMillis: 5000,
    statement_timeout: 120_000,
    ...(schema ? { application_name: schema, options: `-c search_path=${schema}` } : {}),
  });
  await client.connect();
  return client;
}

export interface BenchSchema {
  name: string;
  /** Env for child processes that connect as part of this run (tags their sessions for the cleanup). */
  env: Record<string, string>;
  /** Ends this run's sessions and drops the schema (idempotent). */
  drop(): Promise<void>;
  /** Leaves the schema in place at exit (`--keep`); a later run drops it once stale. */
  keep(): void;
}

const STALE_MS = 6 * 3600_000;

/** Creates `bench_<unix seconds>_<random>` and arranges for it to be dropped at exit whatever happens. */
export async function createBenchSchema(): Promise<BenchSchema> {
  const name = `bench_${Math.floor(Date.now() / 1000)}_${randomBytes(4).toString('hex')}`;
  const client = await pgClient();
  try {
    // Leftovers of a bench that was killed before it could clean up (older than any bench's budget).
    const { rows } = await client.query<{ nspname: string }>(`select nspname from pg_namespace where nspname ~ '^bench_[0-9]+_[0-9a-f]{8}$'`);
    for (const { nspname } of rows) {
      const created = Number(nspname.split('_')[1]) * 1000;
      if (Date.now() - created > STALE_MS) {
        await client.query(`drop schema if exists ${nspname} cascade`);
        console.log(`  dropped a stale bench schema ${nspname}`);
      }
    }
    await client.query(`create schema ${name}`);
  } finally {
    await client.end();
  }
  let dropped = false;
  const onExit = () => {
    if (!dropped) dropSync(name);
  };
  process.on('exit', onExit);
  return {
    name,
    env: { PGAPPNAME: name, PARLEY_PG_BENCH_SCHEMA: name },
    keep() {
      process.off('exit', onExit);
    },
    async drop() {
      if (dropped) return;
      const c = await pgClient();
      try {
        await dropWith(c, name);
        dropped = true;
        process.off('exit', onExit);
      } finally {
        await c.end();
      }
    },
  };
}

async function dropWith(client: pg.Client, name: string): Promise<void> {
  // A killed child's backend may still be running its last statement and holding locks.
  await client.query('select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1 and pid <> pg_backend_pid()', [name]);
  await client.query(`set lock_timeout = '30s'`);
  await client.query(`drop schema if exists ${name} cascade`);
}

/** From an 'exit' handler (no async there): the same drop in a short child process. */
function dropSync(name: string): void {
  const script = `import pg from 'pg';
const c = new pg.Client({ connectionString: ${JSON.stringify(PG_URL)}, connectionTimeoutMillis: 5000 });
await c.connect();
await c.query('select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1 and pid <> pg_backend_pid()', [${JSON.stringify(name)}]);
await c.query("set lock_timeout = '30s'");
await c.query('drop schema if exists ${name} cascade');
await c.end();`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: repoDir, stdio: ['ignore', 'ignore', 'inherit'], timeout: 45_000 });
  console.error(r.status === 0 ? `dropped PostgreSQL schema ${name} on exit` : `could not drop PostgreSQL schema ${name} on exit (status ${r.status}); the next bench run drops it after 6 hours`);
}

/** PostgreSQL's version, for the results header. */
export async function postgresVersion(): Promise<string> {
  const c = await pgClient();
  try {
    const { rows } = await c.query<{ v: string }>("select current_setting('server_version') as v");
    return rows[0]!.v;
  } finally {
    await c.end();
  }
}

/**
 * Batched multi-row INSERT: `rows` as arrays in `columns` order, as many rows a statement as fit
 * under PostgreSQL's 65,535 bind parameters.
 */
export async function insertRows(client: pg.Client, table: string, columns: readonly string[], rows: readonly unknown[][]): Promise<void> {
  const per = Math.floor(60_000 / columns.length);
  for (let i = 0; i < rows.length; i += per) {
    const chunk = rows.slice(i, i + per);
    const params: unknown[] = [];
    const tuples = chunk.map((row) => `(${row.map((v) => {
      params.push(v);
      return `$${params.length}`;
    }).join(',')})`);
    await client.query(`INSERT INTO ${table} (${columns.join(', ')}) VALUES ${tuples.join(',')}`, params);
  }
}

/** Rows of several lists taken in turns (row i of each list, then row i + 1 of each), so each database's figure sits beside the other's. */
export function interleave<T>(lists: readonly (readonly T[])[]): T[] {
  const out: T[] = [];
  const longest = Math.max(0, ...lists.map((l) => l.length));
  for (let i = 0; i < longest; i++) for (const l of lists) if (i < l.length) out.push(l[i]!);
  return out;
}
