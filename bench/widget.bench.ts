/**
 * Widget benchmark (issue 6):
 * - gzip size (level 9) of the script-tag bundle dist/parley.js (built with `npx vite build` when
 *   missing), beside peer widgets' browser bundles fetched in the same run with `npm pack` into a
 *   temporary folder (never into the project's dependencies): posthog-js `dist/array.js` (the file
 *   its script-tag snippet loads) and @rocket.chat/livechat `build/rocketchat-livechat.min.js` (its
 *   script-tag loader) plus the scripts its iframe page `build/index.html` loads before the widget
 *   shows.
 * - In headless Chromium, on the demo shop page served by startServer: the time from the widget
 *   script having loaded (its Resource Timing `responseEnd`) to the launcher (button "Open chat" in
 *   the widget's open shadow root) being visible, and the longest main-thread task: from a Chrome
 *   trace, the longest task running the widget's script, and the longest task of the page load.
 *   Baseline in the same run: the same page with /widget/parley.js replaced (intercepted in the
 *   browser, nothing leaves the machine) by a minimal script that puts a button in a shadow root.
 * BENCH_WIDGET_RUNS sets the number of page loads per variant (default 7; 3 more are traced).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync, constants as zlib } from 'node:zlib';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startServer } from '../server-stub/main.ts';
import { repoDir } from './lib/child.ts';
import { fmt, median, publish, watchdog, type BenchRow } from './lib/report.ts';

watchdog(5 * 60_000, 'widget bench');
const run = promisify(execFile);
const RUNS = Number(process.env['BENCH_WIDGET_RUNS'] ?? 7);
const TRACED_RUNS = 3;
const KB = 1024;
const gzip = (buf: Buffer) => gzipSync(buf, { level: zlib.Z_BEST_COMPRESSION }).length;

// ---- sizes -----------------------------------------------------------------------------------------

interface Size {
  name: string;
  files: string;
  raw: number;
  gzip: number;
}

async function ourBundle(): Promise<Size> {
  const path = join(repoDir, 'dist', 'parley.js');
  if (!existsSync(path)) {
    console.log('  dist/parley.js is missing: running npx vite build');
    await run('npx', ['vite', 'build'], { cwd: repoDir });
  }
  const buf = readFileSync(path);
  return { name: 'Parley', files: `dist/parley.js (built ${statSync(path).mtime.toISOString()})`, raw: buf.length, gzip: gzip(buf) };
}

async function peerBundles(dir: string): Promise<{ sizes: Size[]; problems: string[] }> {
  const problems: string[] = [];
  try {
    // cwd is the temp folder: nothing is installed into, or read from, the project.
    await run('npm', ['pack', 'posthog-js', '@rocket.chat/livechat', '--pack-destination', dir, '--silent'], { cwd: dir, timeout: 180_000 });
  } catch (error) {
    return { sizes: [], problems: [`npm pack failed, no peer sizes: ${String(error).split('\n')[0]}`] };
  }
  const sizes: Size[] = [];
  for (const tgz of readdirSync(dir).filter((f) => f.endsWith('.tgz'))) {
    const out = join(dir, tgz.replace(/\.tgz$/, ''));
    await run('mkdir', ['-p', out]);
    await run('tar', ['xzf', join(dir, tgz), '-C', out]);
    const pkg = join(out, 'package');
    const meta = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')) as { name: string; version: string };
    if (meta.name === 'posthog-js') {
      const buf = readFileSync(join(pkg, 'dist', 'array.js'));
      sizes.push({ name: `posthog-js ${meta.version}`, files: 'dist/array.js (what the script-tag snippet loads)', raw: buf.length, gzip: gzip(buf) });
      const chat = join(pkg, 'dist', 'conversations.js');
      if (existsSync(chat)) {
        const both = Buffer.concat([buf, readFileSync(chat)]);
        sizes.push({ name: `posthog-js ${meta.version} + chat`, files: 'dist/array.js + dist/conversations.js (its chat extension, loaded on demand)', raw: both.length, gzip: gzip(readFileSync(chat)) + gzip(buf) });
      }
    } else if (meta.name === '@rocket.chat/livechat') {
      const loader = readFileSync(join(pkg, 'build', 'rocketchat-livechat.min.js'));
      sizes.push({ name: `@rocket.chat/livechat ${meta.version} loader`, files: 'build/rocketchat-livechat.min.js (the script tag; it opens an iframe)', raw: loader.length, gzip: gzip(loader) });
      const html = readFileSync(join(pkg, 'build', 'index.html'), 'utf8');
      const scripts = [...html.matchAll(/src="livechat\/([^"]+\.js)"/g)].map((m) => m[1]!);
      const bufs = scripts.map((s) => readFileSync(join(pkg, 'build', s)));
      sizes.push({
        name: `@rocket.chat/livechat ${meta.version} total`,
        files: `loader + the iframe's initial scripts (${scripts.join(', ')})`,
        raw: loader.length + bufs.reduce((a, b) => a + b.length, 0),
        gzip: gzip(loader) + bufs.reduce((a, b) => a + gzip(b), 0),
      });
    } else problems.push(`unexpected package ${meta.name}`);
  }
  return { sizes, problems };
}

// ---- browser ---------------------------------------------------------------------------------------

/** A minimal widget: a button named "Open chat" in an open shadow root, the same shape as Parley's. */
const STUB_WIDGET = `(function(){var h=document.createElement('div');h.setAttribute('data-parley','');var r=h.attachShadow({mode:'open'});
r.innerHTML='<style>.l{position:fixed;right:20px;bottom:20px;width:56px;height:56px;border-radius:50%;border:0;background:#333;color:#fff}</style><button type="button" class="l" aria-label="Open chat">?</button>';
document.body.appendChild(h);})();`;

/** Runs in the page before anything else: notes the first frame in which the launcher is visible. */
const WATCH_LAUNCHER = `(() => {
  const w = window;
  w.__launcherVisibleAt = null;
  const look = () => {
    const b = document.querySelector('[data-parley]')?.shadowRoot?.querySelector('button[aria-label="Open chat"]');
    if (b && b.checkVisibility({ opacityProperty: true, visibilityProperty: true }) && b.getBoundingClientRect().width > 0) {
      w.__launcherVisibleAt = performance.now();
      return;
    }
    requestAnimationFrame(look);
  };
  requestAnimationFrame(look);
})();`;

interface LoadTiming {
  /** Widget script responseEnd → launcher visible (ms). */
  scriptToVisible: number;
  /** Navigation start → launcher visible (ms). */
  navToVisible: number;
}

const chromiumArgs = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

async function openPage(browser: Browser, stub: boolean): Promise<Page> {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.addInitScript(WATCH_LAUNCHER);
  if (stub) await page.route('**/widget/parley.js', (route) => route.fulfill({ status: 200, contentType: 'text/javascript', body: STUB_WIDGET }));
  return page;
}

async function timeLoad(browser: Browser, url: string, stub: boolean): Promise<LoadTiming> {
  const page = await openPage(browser, stub);
  try {
    await page.goto(url, { waitUntil: 'load' });
    await page.getByRole('button', { name: 'Open chat' }).waitFor({ state: 'visible', timeout: 20_000 });
    await page.waitForFunction('window.__launcherVisibleAt !== null', undefined, { timeout: 20_000 });
    return await page.evaluate(() => {
      const w = window as unknown as { __launcherVisibleAt: number };
      const script = performance.getEntriesByType('resource').find((e) => e.name.includes('/widget/parley.js')) as PerformanceResourceTiming | undefined;
      if (!script) throw new Error('no resource timing for /widget/parley.js');
      return { scriptToVisible: w.__launcherVisibleAt - script.responseEnd, navToVisible: w.__launcherVisibleAt };
    });
  } finally {
    await page.context().close();
  }
}

interface TraceEvent {
  name: string;
  ph: string;
  ts: number;
  dur?: number;
  pid: number;
  tid: number;
  args?: { name?: string; data?: { url?: string; scriptName?: string; stackTrace?: { url?: string }[] } };
}

interface Tasks {
  /** Longest main-thread task that ran the widget script (compile, evaluate or a call into it), ms. */
  widget: number;
  /** Longest main-thread task from navigation to one second after the launcher showed, ms. */
  any: number;
}

function longestTasks(trace: Buffer): Tasks {
  const events = (JSON.parse(trace.toString('utf8')) as { traceEvents: TraceEvent[] }).traceEvents;
  const mains = new Set(events.filter((e) => e.ph === 'M' && e.name === 'thread_name' && e.args?.name === 'CrRendererMain').map((e) => `${e.pid}:${e.tid}`));
  const onMain = events.filter((e) => mains.has(`${e.pid}:${e.tid}`) && e.ph === 'X');
  const tasks = onMain.filter((e) => e.name === 'RunTask' || e.name === 'ThreadControllerImpl::RunTask');
  const touchesWidget = (e: TraceEvent) => {
    const d = e.args?.data;
    const urls = [d?.url, d?.scriptName, d?.stackTrace?.[0]?.url];
    return urls.some((u) => typeof u === 'string' && u.includes('/widget/parley.js'));
  };
  const widgetMarks = onMain.filter(touchesWidget);
  let widget = 0;
  let any = 0;
  for (const t of tasks) {
    const end = t.ts + (t.dur ?? 0);
    const ms = (t.dur ?? 0) / 1000;
    any = Math.max(any, ms);
    if (widgetMarks.some((m) => m.pid === t.pid && m.tid === t.tid && m.ts >= t.ts && m.ts <= end)) widget = Math.max(widget, ms);
  }
  return { widget, any };
}

async function traceLoad(browser: Browser, url: string, stub: boolean): Promise<Tasks> {
  const page = await openPage(browser, stub);
  try {
    await browser.startTracing(page, { categories: ['devtools.timeline', 'disabled-by-default-devtools.timeline', 'v8', 'toplevel'] });
    await page.goto(url, { waitUntil: 'load' });
    await page.getByRole('button', { name: 'Open chat' }).waitFor({ state: 'visible', timeout: 20_000 });
    await page.waitForTimeout(1000);
    return longestTasks(await browser.stopTracing());
  } finally {
    await page.context().close();
  }
}

// ---- main ------------------------------------------------------------------------------------------

const dir = mkdtempSync(join(tmpdir(), 'parley-bench-widget-'));
try {
  console.log('widget bench: sizes (npm pack of the peers into a temp folder)…');
  const ours = await ourBundle();
  const peers = await peerBundles(dir);
  for (const s of [ours, ...peers.sizes]) console.log(`  ${s.name.padEnd(36)} ${fmt(s.raw / KB, 'KiB').padStart(10)} raw  ${fmt(s.gzip / KB, 'KiB').padStart(10)} gzip -9   ${s.files}`);

  console.log(`widget bench: headless Chromium on the demo shop, ${RUNS} loads per variant + ${TRACED_RUNS} traced…`);
  const server = await startServer({ port: 0, host: '127.0.0.1', sqlitePath: join(dir, 'parley.db'), quiet: true, rateLimits: 'off', log: () => undefined });
  const url = `http://127.0.0.1:${server.port}/`;
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: chromiumArgs });
  const timings: { parley: LoadTiming[]; stub: LoadTiming[] } = { parley: [], stub: [] };
  const traces: { parley: Tasks[]; stub: Tasks[] } = { parley: [], stub: [] };
  try {
    await timeLoad(browser, url, false); // warm-up: first compile, server caches
    await timeLoad(browser, url, true);
    for (let i = 0; i < RUNS; i++) {
      timings.parley.push(await timeLoad(browser, url, false));
      timings.stub.push(await timeLoad(browser, url, true));
    }
    for (let i = 0; i < TRACED_RUNS; i++) {
      traces.parley.push(await traceLoad(browser, url, false));
      traces.stub.push(await traceLoad(browser, url, true));
    }
  } finally {
    await browser.close();
    await server.close();
  }
  const med = (xs: number[]) => median(xs);
  const rows: BenchRow[] = [];
  for (const peer of peers.sizes) {
    rows.push({ bench: 'widget', figure: 'script-tag bundle, gzip -9', value: ours.gzip / KB, unit: 'KiB', higherIsBetter: false, baseline: { label: peer.name, value: peer.gzip / KB }, note: `${peer.name}: ${peer.files}; raw ${fmt(peer.raw / KB, 'KiB')}` });
  }
  if (peers.sizes.length === 0) rows.push({ bench: 'widget', figure: 'script-tag bundle, gzip -9', value: ours.gzip / KB, unit: 'KiB', higherIsBetter: false, note: peers.problems.join('; ') });
  const stubLabel = 'minimal shadow-root button script';
  rows.push(
    { bench: 'widget', figure: 'script loaded → launcher visible (median)', value: med(timings.parley.map((t) => t.scriptToVisible)), unit: 'ms', higherIsBetter: false,
      baseline: { label: stubLabel, value: med(timings.stub.map((t) => t.scriptToVisible)) },
      note: `max ${fmt(Math.max(...timings.parley.map((t) => t.scriptToVisible)), 'ms')} over ${RUNS} loads; navigation start → launcher visible median ${fmt(med(timings.parley.map((t) => t.navToVisible)), 'ms')} (baseline ${fmt(med(timings.stub.map((t) => t.navToVisible)), 'ms')})` },
    { bench: 'widget', figure: 'longest main-thread task running the widget (median of max)', value: med(traces.parley.map((t) => t.widget)), unit: 'ms', higherIsBetter: false,
      baseline: { label: stubLabel, value: med(traces.stub.map((t) => t.widget)) }, target: '< 50 ms (a long task)', targetMax: 50,
      note: `Chrome trace over ${TRACED_RUNS} loads each: tasks that compile, evaluate or call into /widget/parley.js; per-load maxima ${traces.parley.map((t) => t.widget.toFixed(1)).join(', ')} ms` },
    { bench: 'widget', figure: 'longest main-thread task of the page load (median of max)', value: med(traces.parley.map((t) => t.any)), unit: 'ms', higherIsBetter: false,
      baseline: { label: stubLabel, value: med(traces.stub.map((t) => t.any)) } },
  );
  publish('Widget benchmark', rows, [
    `widget: ours ${ours.files}, raw ${fmt(ours.raw / KB, 'KiB')}, gzip -9 ${fmt(ours.gzip / KB, 'KiB')}`,
    ...peers.problems.map((p) => `widget: ${p}`),
  ]);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
