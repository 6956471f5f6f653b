/**
 * Ping benchmark (issue 6): requests/s and p50/p99 latency of `POST /v1/messenger/ping`, with
 * autocannon (50 connections) in this process and the server in a child process, against a raw
 * node:http server (also a child) answering the same JSON, in the same run.
 *
 * Runs: raw baseline, Parley with one known visitor, Parley with a new visitor on every request,
 * Parley with a mix (1,000 known visitors, 10% of requests from new ones), raw baseline again
 * (the baseline is the mean of the two raw runs, which brackets the Parley runs on a busy machine).
 * BENCH_PING_SECONDS sets each run's length (default 10). `--profile` CPU-profiles the server child
 * and prints where its time went.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon, { type RequestSpec, type Result } from 'autocannon';
import { startChild } from './lib/child.ts';
import { fmt, publish, watchdog, type BenchRow } from './lib/report.ts';
import { summariseProfile } from './lib/profile.ts';
import type { ParleyServerInfo } from './support/parley-server.ts';

watchdog(5 * 60_000, 'ping bench');
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
  console.log(`  ${label.padEnd(44)} ${fmt(out.rps, 'req/s').padStart(12)}  p50 ${fmt(out.p50, 'ms')}  p99 ${fmt(out.p99, 'ms')}${out.errors || out.non2xx ? `  errors ${out.errors}, non-2xx ${out.non2xx}` : ''}`);
  return out;
}

const profDir = process.argv.includes('--profile') ? mkdtempSync(join(tmpdir(), 'parley-bench-prof-')) : undefined;
const server = await startChild<ParleyServerInfo>('support/parley-server.ts', [], { nodeArgs: profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [] });
const { url, app_id } = server.ready;
try {
  const ping = async (visitor_id: string) => {
    const res = await fetch(`${url}${PATH}`, { method: 'POST', headers: HEADERS, body: JSON.stringify({ app_id, visitor_id }) });
    if (res.status !== 200) throw new Error(`ping answered ${res.status}: ${await res.text()}`);
    return res.text();
  };
  const known = randomUUID();
  await ping(known);
  const answer = await ping(known);
  const pool = Array.from({ length: 1000 }, () => randomUUID());
  for (const v of pool) await ping(v);

  const raw = await startChild<{ url: string }>('support/raw-server.ts', [answer]);
  console.log(`ping bench: ${CONNECTIONS} connections, ${SECONDS} s a run (after 2 s of warm-up), server and raw baseline in child processes`);
  const fixed = (visitor: string): RequestSpec[] => [{ method: 'POST', path: PATH, headers: HEADERS, body: JSON.stringify({ app_id, visitor_id: visitor }) }];
  let n = 0;
  const setup = (pick: () => string): RequestSpec[] => [{
    method: 'POST', path: PATH, headers: HEADERS,
    setupRequest: (req) => ({ ...req, body: JSON.stringify({ app_id, visitor_id: pick() }) }),
  }];
  let raw1: Load, raw2: Load, knownRun: Load, fresh: Load, mixed: Load;
  try {
    raw1 = await load('raw node:http, same JSON (before)', raw.ready.url, fixed(known));
    knownRun = await load('Parley, one known visitor', url, fixed(known));
    fresh = await load('Parley, a new visitor every request', url, setup(() => randomUUID()));
    mixed = await load('Parley, 1,000 known visitors + 10% new', url, setup(() => (n++ % 10 === 9 ? randomUUID() : pool[n % pool.length]!)));
    raw2 = await load('raw node:http, same JSON (after)', raw.ready.url, fixed(known));
  } finally {
    await raw.stop();
  }
  const base = { rps: (raw1.rps + raw2.rps) / 2, p50: (raw1.p50 + raw2.p50) / 2, p99: (raw1.p99 + raw2.p99) / 2 };
  const label = 'raw node:http, mean of 2 runs';
  const rows: BenchRow[] = [];
  const add = (what: string, l: Load, target: boolean) => {
    const failures = l.errors + l.non2xx;
    rows.push({ bench: 'ping', figure: `${what}: requests/s`, value: l.rps, unit: 'req/s', higherIsBetter: true, baseline: { label, value: base.rps },
      ...(target ? { target: '≥ 0.5 × raw', targetMin: base.rps / 2 } : {}),
      ...(failures ? { note: `${l.errors} errors/timeouts and ${l.non2xx} non-2xx answers` } : {}) });
    rows.push({ bench: 'ping', figure: `${what}: p50 latency`, value: l.p50, unit: 'ms', higherIsBetter: false, baseline: { label, value: base.p50 } });
    rows.push({ bench: 'ping', figure: `${what}: p99 latency`, value: l.p99, unit: 'ms', higherIsBetter: false, baseline: { label, value: base.p99 } });
  };
  add('known visitor', knownRun, true);
  add('new visitor every request', fresh, false);
  add('1,000 known + 10% new', mixed, false);
  publish(`Ping benchmark (${CONNECTIONS} connections, ${SECONDS} s a run)`, rows, [
    `ping: raw baseline runs ${fmt(raw1.rps, 'req/s')} before and ${fmt(raw2.rps, 'req/s')} after the Parley runs`,
  ]);
} finally {
  await server.stop();
  if (profDir) {
    for (const f of readdirSync(profDir)) for (const line of summariseProfile(join(profDir, f), 25)) console.log(`  ${line}`);
    rmSync(profDir, { recursive: true, force: true });
  }
}
