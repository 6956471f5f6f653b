/**
 * Bench figures, printed as one table: each figure beside the baseline measured in the same run.
 * A bench writes its rows as JSON to $BENCH_JSON_OUT when run-all.ts asks for them.
 */
import { writeFileSync } from 'node:fs';

export interface BenchRow {
  bench: string;
  figure: string;
  /** The database the figure was measured on (SQLite or PostgreSQL), when it depends on one. */
  db?: string | undefined;
  value: number;
  unit: string;
  /** True when a larger value is better (rates); false for times, sizes, memory. */
  higherIsBetter: boolean;
  baseline?: { label: string; value: number } | undefined;
  /** For example `>= 50,000 rows/s`; checked against `value` with `targetMin`/`targetMax`. */
  target?: string | undefined;
  targetMin?: number | undefined;
  targetMax?: number | undefined;
  note?: string | undefined;
}

export function fmt(value: number, unit: string): string {
  if (!Number.isFinite(value)) return 'n/a';
  const digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2;
  const n = value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
  return unit ? `${n} ${unit}` : n;
}

export function ratio(row: BenchRow): number | undefined {
  if (!row.baseline || row.baseline.value === 0 || !Number.isFinite(row.baseline.value)) return undefined;
  return row.value / row.baseline.value;
}

export function verdict(row: BenchRow): string {
  if (row.targetMin === undefined && row.targetMax === undefined) return '';
  const ok = (row.targetMin === undefined || row.value >= row.targetMin) && (row.targetMax === undefined || row.value <= row.targetMax);
  return ok ? 'yes' : 'NO';
}

const HEAD = ['bench', 'db', 'figure', 'ours', 'baseline (same run)', 'ours / baseline', 'target', 'met'];

function cells(row: BenchRow): string[] {
  const r = ratio(row);
  return [
    row.bench,
    row.db ?? '',
    row.figure,
    fmt(row.value, row.unit),
    row.baseline ? `${fmt(row.baseline.value, row.unit)} (${row.baseline.label})` : '',
    r === undefined ? '' : `${r.toFixed(2)}×`,
    row.target ?? '',
    verdict(row),
  ];
}

export function textTable(rows: BenchRow[]): string {
  const all = [HEAD, ...rows.map(cells)];
  const widths = HEAD.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join(' │ ').trimEnd();
  const sep = widths.map((w) => '─'.repeat(w)).join('─┼─');
  return [line(HEAD), sep, ...rows.map(cells).map(line)].join('\n');
}

export function markdownTable(rows: BenchRow[]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const out = [`| ${HEAD.join(' | ')} |`, `|${HEAD.map(() => '---').join('|')}|`];
  for (const r of rows) out.push(`| ${cells(r).map(esc).join(' | ')} |`);
  return out.join('\n');
}

export function notes(rows: BenchRow[]): string[] {
  return rows.filter((r) => r.note).map((r) => `${r.bench} · ${r.db ? `${r.db} · ` : ''}${r.figure}: ${r.note}`);
}

/** Prints the table and hands the rows to run-all.ts when it asked for them. */
export function publish(title: string, rows: BenchRow[], extraNotes: string[] = []): void {
  console.log(`\n${title}\n`);
  console.log(textTable(rows));
  const all = [...notes(rows), ...extraNotes];
  if (all.length > 0) console.log(`\n${all.map((n) => `  - ${n}`).join('\n')}`);
  const out = process.env['BENCH_JSON_OUT'];
  if (out) writeFileSync(out, JSON.stringify({ rows, notes: extraNotes }, null, 2));
}

/** Percentile of an unsorted sample (nearest rank). */
export function percentile(sample: readonly number[], p: number): number {
  if (sample.length === 0) return Number.NaN;
  const sorted = [...sample].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export function median(sample: readonly number[]): number {
  return percentile(sample, 50);
}

/**
 * Ends the process if a bench overruns its time budget (each bench stops by itself), and makes
 * SIGTERM/SIGINT end it through process.exit, so the 'exit' handlers stop its child processes.
 */
export function watchdog(ms: number, what: string): void {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      console.error(`${what}: ${signal}, stopping`);
      process.exit(130);
    });
  }
  setTimeout(() => {
    console.error(`${what}: still running after ${Math.round(ms / 1000)} s, giving up`);
    process.exit(3);
  }, ms).unref();
}
