/**
 * `npm run bench`: runs every benchmark, each in its own process, one after another, then prints
 * one table (each figure beside its baseline from the same run) and writes bench/RESULTS.md with
 * the machine, the command, the date and the table.
 *
 * The merge bench runs at 20,000 leads unless BENCH_FULL=1 (100,000) or BENCH_LEADS is set.
 * BENCH_ONLY=merge,ping runs a subset and then leaves RESULTS.md alone.
 * BENCH_DB=postgres|both runs the merge and ping benches on PostgreSQL too (BENCH_PG_URL, default
 * postgres://postgres@127.0.0.1:5432/test, fresh schemas dropped afterwards); the table's db column
 * says which database each figure was measured on.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import SQLite from 'better-sqlite3';
import { benchDir, repoDir } from './lib/child.ts';
import { markdownTable, notes, textTable, type BenchRow } from './lib/report.ts';
import { benchDbs, PG_URL, postgresVersion } from './lib/postgres.ts';

const full = process.env['BENCH_FULL'] === '1';
const leads = process.env['BENCH_LEADS'] ?? (full ? '100000' : '20000');
const only = process.env['BENCH_ONLY']?.split(',').map((s) => s.trim()).filter(Boolean);

interface Bench {
  name: string;
  file: string;
  env: Record<string, string>;
  budgetMs: number;
}

// BENCH_DB=postgres|both: the merge and ping benches also (or only) run on PostgreSQL, each figure beside SQLite's.
const dbs = benchDbs([]);
const BENCHES: Bench[] = [
  { name: 'merge', file: 'merge.bench.ts', env: { BENCH_LEADS: leads }, budgetMs: dbs.length * (Number(leads) > 20_000 ? 90 : 8) * 60_000 },
  { name: 'ping', file: 'ping.bench.ts', env: {}, budgetMs: dbs.length * 6 * 60_000 },
  { name: 'messages', file: 'message-latency.bench.ts', env: {}, budgetMs: 6 * 60_000 },
  { name: 'widget', file: 'widget.bench.ts', env: {}, budgetMs: 6 * 60_000 },
];

interface Outcome {
  bench: Bench;
  rows: BenchRow[];
  notes: string[];
  seconds: number;
  ok: boolean;
  load: [number, number];
}

function runBench(bench: Bench, out: string): Promise<{ code: number | null; seconds: number }> {
  const t0 = performance.now();
  const child = spawn(process.execPath, ['--import', 'tsx', join(benchDir, bench.file)], {
    cwd: repoDir,
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, ...bench.env, BENCH_JSON_OUT: out, PARLEY_RATE_LIMIT: 'off' },
  });
  const timer = setTimeout(() => {
    console.error(`${bench.name}: over its ${bench.budgetMs / 60_000} min budget, stopping it`);
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
  }, bench.budgetMs);
  return new Promise((resolve) => {
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, seconds: (performance.now() - t0) / 1000 });
    });
  });
}

async function machine(): Promise<string[]> {
  const cpuModel = (() => {
    try {
      const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('model name'));
      return line ? line.split(':')[1]!.trim() : cpus()[0]?.model ?? 'unknown';
    } catch {
      return cpus()[0]?.model ?? 'unknown';
    }
  })();
  const nproc = (() => {
    try {
      return execFileSync('nproc', { encoding: 'utf8' }).trim();
    } catch {
      return String(cpus().length);
    }
  })();
  const chromium = (() => {
    try {
      return execFileSync('/usr/bin/chromium', ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return 'not found';
    }
  })();
  const sqlite = (() => {
    const db = new SQLite(':memory:');
    const v = (db.prepare('select sqlite_version() as v').get() as { v: string }).v;
    db.close();
    return v;
  })();
  const git = (args: string[]) => {
    try {
      return execFileSync('git', args, { cwd: repoDir, encoding: 'utf8' }).replace(/\n+$/, '');
    } catch {
      return '';
    }
  };
  const pgVersion = dbs.includes('postgres') ? await postgresVersion().catch((e: unknown) => `unreachable (${String(e)})`) : undefined;
  const dirty = git(['status', '--porcelain', '--', 'server-stub', 'widget', 'demo']).split('\n').filter(Boolean).map((l) => l.slice(3));
  return [
    `- CPU: ${cpuModel}, nproc ${nproc}`,
    `- memory: ${(totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    `- Node ${process.version}, SQLite ${sqlite} (better-sqlite3), ${chromium}, Linux ${release()}`,
    ...(pgVersion ? [`- PostgreSQL ${pgVersion} at ${new URL(PG_URL).host} (same machine), for the rows marked PostgreSQL`] : []),
    `- code: commit ${git(['rev-parse', '--short', 'HEAD'])}${dirty.length ? `, with uncommitted changes in ${dirty.join(', ')}` : ''}`,
  ];
}

const selected = BENCHES.filter((b) => !only || only.includes(b.name));
const started = new Date();
const tmp = mkdtempSync(join(tmpdir(), 'parley-bench-all-'));
const outcomes: Outcome[] = [];
try {
  for (const bench of selected) {
    console.log(`\n━━━ ${bench.name} (${bench.file}) ━━━`);
    const out = join(tmp, `${bench.name}.json`);
    const loadBefore = loadavg()[0]!;
    const { code, seconds } = await runBench(bench, out);
    const result = existsSync(out) ? (JSON.parse(readFileSync(out, 'utf8')) as { rows: BenchRow[]; notes: string[] }) : { rows: [], notes: [] };
    outcomes.push({ bench, rows: result.rows, notes: result.notes, seconds, ok: code === 0, load: [loadBefore, loadavg()[0]!] });
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

const rows = outcomes.flatMap((o) => o.rows);
const allNotes = [
  ...outcomes.map((o) => `${o.bench.name}: ${o.ok ? 'finished' : 'FAILED or stopped (see its output)'} in ${o.seconds.toFixed(0)} s; 1-minute load average ${o.load[0].toFixed(1)} before, ${o.load[1].toFixed(1)} after`),
  ...notes(rows),
  ...outcomes.flatMap((o) => o.notes),
];
console.log('\n━━━ all benchmarks ━━━\n');
console.log(textTable(rows));
console.log(`\n${allNotes.map((n) => `  - ${n}`).join('\n')}`);

const settings = Object.entries(process.env).filter(([k]) => k.startsWith('BENCH_') && k !== 'BENCH_JSON_OUT').map(([k, v]) => `${k}=${v} `).sort().join('');
const command = `${settings}npm run bench`;
if (only) console.log('\nBENCH_ONLY is set: bench/RESULTS.md left as it was.');
else {
  const md = [
    '# Benchmark results',
    '',
    'Written by `bench/run-all.ts`. Every figure is compared with a baseline measured on the same',
    'machine in the same run; see each bench file for what exactly is measured.',
    '',
    `- command: \`${command}\``,
    `- date: ${started.toISOString()} (took ${((Date.now() - started.getTime()) / 60_000).toFixed(1)} min)`,
    ...(await machine()),
    '',
    markdownTable(rows),
    '',
    '## Notes',
    '',
    ...allNotes.map((n) => `- ${n}`),
    '',
  ].join('\n');
  writeFileSync(join(benchDir, 'RESULTS.md'), md);
  console.log(`\nwrote bench/RESULTS.md`);
}
if (outcomes.some((o) => !o.ok)) process.exitCode = 1;
