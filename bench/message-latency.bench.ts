/**
 * Message latency benchmark (issue 6): end-to-end time from an agent reply
 * (`POST /v1/conversations/:id/reply`, admin API) to its arrival on the visitor's open stream
 * (`GET /v1/messenger/stream`), p50/p99 over sequential replies. The server runs in a child
 * process; baseline: a raw node:http SSE echo (also a child) measured the same way in the same run.
 * BENCH_REPLIES sets the number of measured replies (default 400, after 30 of warm-up).
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { startChild } from './lib/child.ts';
import { openSse, type SseEvent } from './lib/sse.ts';
import { fmt, percentile, publish, watchdog, type BenchRow } from './lib/report.ts';
import type { ParleyServerInfo } from './support/parley-server.ts';

watchdog(5 * 60_000, 'message latency bench');
const REPLIES = Number(process.env['BENCH_REPLIES'] ?? 400);
const WARMUP = 30;

interface Latencies {
  /** Reply sent → message event received on the stream. */
  delivered: number[];
  /** Reply sent → reply's HTTP answer received. */
  answered: number[];
}

/** Sends replies one after another; each waits for its message on the stream (and its HTTP answer). */
async function measure(streamUrl: string, reply: (body: string) => Promise<Response>): Promise<Latencies> {
  const waiting = new Map<string, (t: number) => void>();
  const onEvent = (e: SseEvent) => {
    if (e.event !== 'message') return;
    const body = (JSON.parse(e.data) as { body?: string }).body ?? '';
    waiting.get(body)?.(performance.now());
  };
  let ready!: () => void;
  const isReady = new Promise<void>((resolve) => (ready = resolve));
  const stream = await openSse(streamUrl, (e) => (e.event === 'ready' ? ready() : onEvent(e)));
  await isReady;
  const out: Latencies = { delivered: [], answered: [] };
  try {
    for (let i = 0; i < WARMUP + REPLIES; i++) {
      const body = `bench reply ${i} ${randomUUID()}`;
      const arrived = new Promise<number>((resolve, reject) => {
        waiting.set(body, resolve);
        setTimeout(() => reject(new Error(`reply ${i} did not arrive on the stream within 10 s`)), 10_000).unref();
      });
      const t0 = performance.now();
      const res = await reply(body);
      const t1 = performance.now();
      if (res.status !== 201) throw new Error(`reply answered ${res.status}: ${await res.text()}`);
      await res.arrayBuffer();
      const t2 = await arrived;
      waiting.delete(body);
      if (i >= WARMUP) {
        out.delivered.push(t2 - t0);
        out.answered.push(t1 - t0);
      }
    }
  } finally {
    stream.close();
  }
  return out;
}

const server = await startChild<ParleyServerInfo>('support/parley-server.ts');
const raw = await startChild<{ url: string }>('support/raw-server.ts', ['{}']);
try {
  const { url, app_id, admin_token } = server.ready;
  const visitor_id = randomUUID();
  const started = await fetch(`${url}/v1/messenger/conversations`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ app_id, visitor_id, body: 'Hello, is anyone there?', client_id: randomUUID() }),
  });
  if (started.status !== 201) throw new Error(`start conversation answered ${started.status}: ${await started.text()}`);
  const conversationId = ((await started.json()) as { conversation: { id: string } }).conversation.id;
  console.log(`message latency bench: ${REPLIES} sequential replies (after ${WARMUP} of warm-up), one open stream`);

  const ours = await measure(`${url}/v1/messenger/stream?app_id=${encodeURIComponent(app_id)}&visitor_id=${encodeURIComponent(visitor_id)}`, (body) =>
    fetch(`${url}/v1/conversations/${conversationId}/reply`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${admin_token}` }, body: JSON.stringify({ body }) }));
  const base = await measure(`${raw.ready.url}/v1/messenger/stream`, (body) =>
    fetch(`${raw.ready.url}/reply`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ body }) }));

  const label = 'raw node:http SSE echo';
  const rows: BenchRow[] = [
    { bench: 'messages', db: 'SQLite', figure: 'agent reply → on the open stream, p50', value: percentile(ours.delivered, 50), unit: 'ms', higherIsBetter: false, baseline: { label, value: percentile(base.delivered, 50) } },
    { bench: 'messages', db: 'SQLite', figure: 'agent reply → on the open stream, p99', value: percentile(ours.delivered, 99), unit: 'ms', higherIsBetter: false, baseline: { label, value: percentile(base.delivered, 99) } },
    { bench: 'messages', db: 'SQLite', figure: 'agent reply → HTTP 201 answer, p50', value: percentile(ours.answered, 50), unit: 'ms', higherIsBetter: false, baseline: { label, value: percentile(base.answered, 50) } },
  ];
  publish(`Message latency benchmark (${REPLIES} replies)`, rows, [
    `messages: max reply → stream ${fmt(Math.max(...ours.delivered), 'ms')} (baseline ${fmt(Math.max(...base.delivered), 'ms')}); replies sent one at a time from this process, server in a child process`,
  ]);
} finally {
  await raw.stop();
  await server.stop();
}
