/**
 * Ping benchmark (issue 6): requests/s and p50/p99 latency of `POST /v1/messenger/ping`, with
 * autocannon (50 connections) in this process and the server in a child process, against a raw
 * node:http server (also a child) answering the same JSON, in the same run.
 *
 * Runs: raw baseline, Parley with one known visitor, Parley with a new visitor on every request,
 * Parley with a mix (1,000 known visitors, 10% of requests from new ones), raw baseline again
 * (the baseline is the mean of the two raw runs, which brackets the Parley runs on a busy machine).
 * BENCH_PING_SECONDS sets each run's length (default 10); BENCH_PING_ONLY=known,new,mixed picks scenarios. `--profile` CPU-profiles the server child
 * and prints where its time went.
 *
 * `--db sqlite|postgres|both` (or BENCH_DB; default sqlite): the server child runs on a temp SQLite
 * file and/or on PostgreSQL (BENCH_PG_URL, default postgres://postgres@127.0.0.1:5432/test) in a
 * fresh schema `bench_<time>_<random>`, dropped at the end (see lib/postgres.ts). With both, each
 * scenario runs on SQLite then on PostgreSQL, all between the same two raw runs, and each figure is
 * printed beside the other database's.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon, { type RequestSpec, type Result } from 'autocannon';
import { startChild, type Child } from './lib/child.ts';
import { benchDbs, createBenchSchema, DB_LABEL, PG_URL, postgresVersion, type BenchDb, type BenchSchema } from './lib/postgres.ts';
import { fmt, publish, watchdog, type BenchRow } from './lib/report.ts';
import { summariseProfile } from './lib/profile.ts';
import type { ParleyServerInfo } from './support/parley-server.ts';

const SECONDS = Number(process.env['BENCH_PING_SECONDS'] ?? 10);
const CONNECTIONS = 50;
const PATH = '/v1/messenger/ping';
const HEADERS = { 'content-type': 'application/json' };

interface Load {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

async function load(label: string, url: string, requests: RequestSpec[]): Promise<Load> {
  await autocannon({ url, connections: CONNECTIONS, duration: 2, requests }); // warm-up, not counted
  const r: Result = await autocannon({ url, connections: CONNECTIONS, duration: SECONDS, requests });
  const out = { rps: r.requests.total / r.duration, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.timeouts, non2xx: r.non2xx };
  console.log(`  ${label.padEnd(50)} ${fmt(out.rps, 'req/s').padStart(12)}  p50 ${fmt(out.p50, 'ms')}  p99 ${fmt(out.p99, 'ms')}${out.errors || out.non2xx ? `  errors ${out.errors}, non-2xx ${out.non2xx}` : ''}`);
  return out;
}

const dbs = benchDbs();
watchdog(dbs.length * 5 * 60_000, 'ping bench');
const profDir = process.argv.includes('--profile') ? mkdtempSync(join(tmpdir(), 'parley-bench-prof-')) : undefined;

interface Target {
  db: BenchDb;
  server: Child<ParleyServerInfo>;
  schema?: BenchSchema | undefined;
  known: string;
  pool: string[];
  answer: string;
}

const targets: Target[] = [];
const schemas: BenchSchema[] = [];
try {
  for (const db of dbs) {
    const schema = db === 'postgres' ? await createBenchSchema() : undefined;
    if (schema) schemas.push(schema);
    const server = await startChild<ParleyServerInfo>('support/parley-server.ts', schema ? ['--postgres', schema.name] : [], {
      nodeArgs: profDir ? ['--cpu-prof', `--cpu-prof-dir=${join(profDir, db)}`] : [],
      env: schema?.env ?? {},
    });
    const { url, app_id } = server.ready;
    const ping = async (visitor_id: string) => {
      const res = await fetch(`${url}${PATH}`, { method: 'POST', headers: HEADERS, body: JSON.stringify({ app_id, visitor_id }), signal: AbortSignal.timeout(10_000) });
      if (res.status !== 200) throw new Error(`ping answered ${res.status}: ${await res.text()}`);
      return res.text();
    };
    const known = randomUUID();
    await ping(known);
    const answer = await ping(known);
    const pool = Array.from({ length: 1000 }, () => randomUUID());
    for (const v of pool) await ping(v);
    targets.push({ db, server, schema, known, pool, answer });
  }

  // The baseline answers the first database's JSON (the answers differ only in ids).
  const raw = await startChild<{ url: string }>('support/raw-server.ts', [targets[0]!.answer]);
  const where = dbs.map((d) => (d === 'postgres' ? `PostgreSQL (${new URL(PG_URL).host}, schema ${targets.find((t) => t.db === d)!.schema!.name})` : 'SQLite (temp file)')).join(' and ');
  console.log(`ping bench: ${CONNECTIONS} connections, ${SECONDS} s a run (after 2 s of warm-up), server on ${where} and raw baseline in child processes`);
  const fixed = (app_id: string, visitor: string): RequestSpec[] => [{ method: 'POST', path: PATH, headers: HEADERS, body: JSON.stringify({ app_id, visitor_id: visitor }) }];
  const setup = (app_id: string, pick: () => string): RequestSpec[] => [{
    method: 'POST', path: PATH, headers: HEADERS,
    setupRequest: (req) => ({ ...req, body: JSON.stringify({ app_id, visitor_id: pick() }) }),
  }];
  // Scenario by scenario, each database in turn, between the two raw runs.
  const scenarios: { what: string; label: string; target: boolean; requests: (t: Target) => RequestSpec[] }[] = [
    { what: 'known visitor', label: 'one known visitor', target: true, requests: (t) => fixed(t.server.ready.app_id, t.known) },
    { what: 'new visitor every request', label: 'a new visitor every request', target: false, requests: (t) => setup(t.server.ready.app_id, () => randomUUID()) },
    { what: '1,000 known + 10% new', label: '1,000 known visitors + 10% new', target: false, requests: (t) => {
      let n = 0;
      return setup(t.server.ready.app_id, () => (n++ % 10 === 9 ? randomUUID() : t.pool[n % t.pool.length]!));
    } },
  ];
  // BENCH_PING_ONLY=known (a comma list of 'known', 'new', 'mixed') runs only those scenarios, to profile one.
  const only = process.env['BENCH_PING_ONLY']?.split(',');
  const keys = ['known', 'new', 'mixed'];
  const chosen = scenarios.filter((_, i) => !only || only.includes(keys[i]!));
  const results = new Map<string, Load>();
  let raw1: Load, raw2: Load;
  try {
    raw1 = await load('raw node:http, same JSON (before)', raw.ready.url, fixed(targets[0]!.server.ready.app_id, targets[0]!.known));
    for (const s of chosen) {
      for (const t of targets) results.set(`${s.what}/${t.db}`, await load(`Parley ${DB_LABEL[t.db]}, ${s.label}`, t.server.ready.url, s.requests(t)));
    }
    raw2 = await load('raw node:http, same JSON (after)', raw.ready.url, fixed(targets[0]!.server.ready.app_id, targets[0]!.known));
  } finally {
    await raw.stop();
  }
  const base = { rps: (raw1.rps + raw2.rps) / 2, p50: (raw1.p50 + raw2.p50) / 2, p99: (raw1.p99 + raw2.p99) / 2 };
  const label = 'raw node:http, mean of 2 runs';
  const rows: BenchRow[] = [];
  for (const s of chosen) {
    const per = targets.map((t) => ({ db: DB_LABEL[t.db], l: results.get(`${s.what}/${t.db}`)! }));
    // requests/s of each database, then p50 of each, then p99 of each: each figure beside the other database's.
    for (const { db, l } of per) {
      const failures = l.errors + l.non2xx;
      rows.push({ bench: 'ping', db, figure: `${s.what}: requests/s`, value: l.rps, unit: 'req/s', higherIsBetter: true, baseline: { label, value: base.rps },
        ...(s.target ? { target: '≥ 0.5 × raw', targetMin: base.rps / 2 } : {}),
        ...(failures ? { note: `${l.errors} errors/timeouts and ${l.non2xx} non-2xx answers` } : {}) });
    }
    for (const { db, l } of per) rows.push({ bench: 'ping', db, figure: `${s.what}: p50 latency`, value: l.p50, unit: 'ms', higherIsBetter: false, baseline: { label, value: base.p50 } });
    for (const { db, l } of per) rows.push({ bench: 'ping', db, figure: `${s.what}: p99 latency`, value: l.p99, unit: 'ms', higherIsBetter: false, baseline: { label, value: base.p99 } });
  }
  const extra = [`ping: raw baseline runs ${fmt(raw1.rps, 'req/s')} before and ${fmt(raw2.rps, 'req/s')} after the Parley runs`];
  if (dbs.includes('postgres')) {
    extra.push(`ping: PostgreSQL ${await postgresVersion()} on 127.0.0.1 (the same machine, sharing its ${availableParallelism()} cores with the server and autocannon), a fresh schema dropped afterwards, the server's pool of ${process.env['PARLEY_PG_POOL'] ?? 10} connections (PARLEY_PG_POOL)`);
  }
  publish(`Ping benchmark (${CONNECTIONS} connections, ${SECONDS} s a run, ${dbs.map((d) => DB_LABEL[d]).join(' and ')})`, rows, extra);
} finally {
  for (const t of targets) await t.server.stop();
  for (const s of schemas) await s.drop();
  if (profDir) {
    for (const db of dbs) {
      const dir = join(profDir, db);
      if (!existsSync(dir)) continue;
      console.log(`\nCPU profile of the server on ${DB_LABEL[db]}:`);
      for (const f of readdirSync(dir)) for (const line of summariseProfile(join(dir, f), 25)) console.log(`  ${line}`);
    }
    rmSync(profDir, { recursive: true, force: true });
  }
}
