/**
 * Sends webhook deliveries: signed with HMAC-SHA256 of the body (the app's webhook secret) in
 * `Parley-Signature: sha256=<hex>`, each attempt logged, failures and timeouts retried with
 * exponential backoff. Deliveries live in the database, so a restart resumes them; one cut short
 * by stop() goes back to pending uncounted (see releaseInterrupted).
 */
import { createHmac } from 'node:crypto';
import type { Services } from './context.ts';
import { transaction } from '../storage/transactions.ts';

export interface WebhookWorkerOptions {
  pollMs?: number;
  timeoutMs?: number;
  /** First retry delay; doubles each attempt. */
  retryBaseMs?: number;
  maxAttempts?: number;
  fetch?: typeof fetch;
}

export interface WebhookWorker {
  wake(): void;
  drain(): Promise<void>;
  stop(): Promise<void>;
}

export function signWebhook(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body, 'utf8').digest('hex')}`;
}

/** Exponential backoff, capped at an hour. */
export const retryDelay = (attempts: number, baseMs: number): number => Math.min(3_600_000, baseMs * 2 ** Math.max(0, attempts - 1));

export function startWebhookWorker(s: Services, options: WebhookWorkerOptions = {}): WebhookWorker {
  const pollMs = options.pollMs ?? 1000;
  const timeoutMs = options.timeoutMs ?? 5000;
  const baseMs = options.retryBaseMs ?? 1000;
  const maxAttempts = options.maxAttempts ?? 10;
  const send = options.fetch ?? fetch;
  let stopped = false;
  let running: Promise<void> | null = null;
  let timer: NodeJS.Timeout | undefined;
  // Aborted by stop(): fetch then rejects with exactly this signal's reason, which tells a
  // shutdown apart from a timeout or a network error.
  const inflight = new AbortController();

  async function attempt(d: { id: string; app_id: string; webhook_id: string; event: string; payload: string; attempts: number }): Promise<void> {
    const hook = await s.db.selectFrom('webhooks').innerJoin('apps', 'apps.id', 'webhooks.app_id').select(['webhooks.url', 'apps.webhook_secret'])
      .where('webhooks.id', '=', d.webhook_id).executeTakeFirst();
    const now = s.clock.now();
    if (!hook) {
      await s.db.updateTable('webhook_deliveries').set({ status: 'failed', locked_until: null }).where('id', '=', d.id).execute();
      return;
    }
    const started = performance.now();
    let statusCode: number | null = null;
    let error: string | null = null;
    try {
      const res = await send(hook.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'parley-event': d.event, 'parley-delivery': d.id, 'parley-signature': signWebhook(hook.webhook_secret, d.payload) },
        body: d.payload,
        signal: AbortSignal.any([AbortSignal.timeout(timeoutMs), inflight.signal]),
        redirect: 'manual',
      });
      statusCode = res.status;
      await res.body?.cancel();
      if (res.status < 200 || res.status >= 300) error = `answered ${res.status}`;
    } catch (e) {
      if (inflight.signal.aborted && e === inflight.signal.reason) {
        await releaseInterrupted(d);
        return;
      }
      error = e instanceof Error ? (e.name === 'TimeoutError' ? `timed out after ${timeoutMs} ms` : e.message) : String(e);
    }
    const attempts = d.attempts + 1;
    const ok = error === null;
    await transaction(s.db, async (trx) => {
      await trx.insertInto('webhook_attempts').values({ id: s.ids('wat'), delivery_id: d.id, attempted_at: now.toISOString(), status_code: statusCode, error, duration_ms: Math.round(performance.now() - started) }).execute();
      await trx.updateTable('webhook_deliveries').set(ok
        ? { status: 'delivered', attempts, locked_until: null, delivered_at: s.clock.now().toISOString() }
        : { status: attempts >= maxAttempts ? 'failed' : 'pending', attempts, locked_until: null, next_attempt_at: new Date(now.getTime() + retryDelay(attempts, baseMs)).toISOString() })
        .where('id', '=', d.id).execute();
    });
  }

  /**
   * A delivery cut short by our own shutdown is not the receiver's failure: counting it would use
   * up a retry at every restart (and mark it failed after enough deploys). It goes back to pending,
   * lease released, attempts and next_attempt_at unchanged and no attempt logged, so the next
   * start sends it again at once. The receiver may have got the body before the abort, so it may
   * see the delivery twice; it dedupes on `parley-delivery`, as for any at-least-once retry.
   */
  async function releaseInterrupted(d: { id: string; attempts: number }): Promise<void> {
    await s.db.updateTable('webhook_deliveries').set({ status: 'pending', locked_until: null })
      .where('id', '=', d.id).where('status', '=', 'sending').where('attempts', '=', d.attempts).execute();
  }

  async function tick(): Promise<void> {
    for (;;) {
      const now = s.clock.now();
      const nowIso = now.toISOString();
      const due = await s.db.selectFrom('webhook_deliveries').selectAll()
        .where((eb) => eb.or([
          eb.and([eb('status', '=', 'pending'), eb('next_attempt_at', '<=', nowIso)]),
          eb.and([eb('status', '=', 'sending'), eb('locked_until', '<', nowIso)]),
        ]))
        .orderBy('next_attempt_at').limit(20).execute();
      if (due.length === 0 || stopped) return;
      const lease = new Date(now.getTime() + timeoutMs * 2).toISOString();
      const claimed = [];
      for (const d of due) {
        // Claimed by a conditional update, so two instances never send one delivery at once.
        const r = await s.db.updateTable('webhook_deliveries').set({ status: 'sending', locked_until: lease })
          .where('id', '=', d.id).where('status', '=', d.status).where('attempts', '=', d.attempts).executeTakeFirst();
        if (Number(r.numUpdatedRows) === 1) claimed.push(d);
      }
      await Promise.all(claimed.map(attempt));
    }
  }

  const log = (error: unknown) => console.error(JSON.stringify({ level: 'error', msg: 'webhook worker failed', error: String(error) }));
  function run(): Promise<void> {
    if (!running) running = tick().finally(() => (running = null));
    return running;
  }
  function schedule(): void {
    if (stopped) return;
    timer = setTimeout(() => void run().catch(log).finally(schedule), pollMs);
    timer.unref();
  }
  schedule();
  return {
    wake: () => void run().catch(log),
    async drain() {
      while (running) await running;
      await run();
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      inflight.abort();
      while (running) await running.catch(log);
    },
  };
}
