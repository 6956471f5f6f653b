/**
 * Composition root: database, services, merge worker and HTTP app wired together. Binds no port
 * (see main.ts), so tests run the real server in-process on a real database file.
 */
import { createIdGenerator, systemClock, type Clock, type IdGenerator } from './ids.ts';
import { createHub, type Hub } from './realtime/hub.ts';
import { createPgFanout, type FanoutHub } from './realtime/pg-fanout.ts';
import { messageView } from './storage/conversations.ts';
import { createApp } from './http/app.ts';
import { createMessengerGate } from './http/messenger-gate.ts';
import { createPingEndpoint, type PingEndpoint } from './http/ping-endpoint.ts';
import { createRateLimiter, DEFAULT_LIMITS, type RateLimits } from './http/rate-limit.ts';
import { openDatabase, type DatabaseHandle, type DatabaseOptions } from './storage/database.ts';
import { startMergeWorker, type MergeWorker } from './services/merge-worker.ts';
import type { Services } from './services/context.ts';
import { createLastSeen } from './services/last-seen.ts';
import { createPingAnswers } from './services/ping-answers.ts';
import { mayChangePingAnswers } from './storage/write-effects.ts';
import { startWebhookWorker, type WebhookWorker } from './services/webhook-worker.ts';
import type { Hono } from 'hono';

export interface ParleyOptions extends DatabaseOptions {
  clock?: Clock;
  ids?: IdGenerator;
  /** Rate limits, or 'off'; defaults to PARLEY_RATE_LIMIT=off or the built-in limits. */
  rateLimits?: RateLimits | 'off';
  log?: (line: Record<string, unknown>) => void;
  workerPollMs?: number;
  /** Run the background merge worker (default true; the CLI's one-shot commands need none). */
  runWorker?: boolean;
  /** How often coalesced last-seen times are written. */
  lastSeenFlushMs?: number;
  /** First webhook retry delay (doubles each attempt). */
  webhookRetryBaseMs?: number;
  keepAliveMs?: number;
}

export interface Parley {
  app: Hono;
  /** The ping endpoint the app routes to, for the node:http fast path (http/node-fast-path.ts). */
  ping: PingEndpoint;
  /** Where request lines go. */
  log: (line: Record<string, unknown>) => void;
  services: Services;
  database: DatabaseHandle;
  worker: MergeWorker;
  webhooks: WebhookWorker;
  hub: Hub;
  close(): Promise<void>;
}

/** Stands in for the worker where none runs: jobs wait in the database for a server to run them. */
const idleWorker: MergeWorker = { wake: () => undefined, drain: async () => undefined, stop: async () => undefined };

export function rateLimitsFromEnv(): RateLimits | 'off' {
  return process.env['PARLEY_RATE_LIMIT'] === 'off' ? 'off' : DEFAULT_LIMITS;
}

export async function createParley(options: ParleyOptions = {}): Promise<Parley> {
  const database = await openDatabase(options);
  const log = options.log ?? ((line) => process.stdout.write(`${JSON.stringify({ t: new Date().toISOString(), ...line })}\n`));
  // On PostgreSQL, several instances share live events through LISTEN/NOTIFY.
  const fanout: FanoutHub | null = database.pool
    ? await createPgFanout(createHub(), database.pool, async (id) => {
      const row = await database.db.selectFrom('messages').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
      return messageView(row);
    }, (error) => log({ level: 'error', msg: 'live fan-out failed', error: String(error) }))
    : null;
  const hub: Hub = fanout ?? createHub();
  const clock = options.clock ?? systemClock;
  let worker: MergeWorker | undefined;
  let webhooks: WebhookWorker | undefined;
  const services: Services = {
    db: database.db,
    dialect: database.dialect,
    clock,
    ids: options.ids ?? createIdGenerator(() => clock.now().getTime()),
    hub,
    wakeWorker: () => worker?.wake(),
    wakeWebhooks: () => webhooks?.wake(),
    lastSeen: createLastSeen(database.db, options.lastSeenFlushMs ?? 5000, (error) => log({ level: 'error', msg: 'last-seen flush failed', error: String(error) })),
    pingAnswers: database.changes ? createPingAnswers(database.changes, mayChangePingAnswers) : undefined,
  };
  worker = options.runWorker === false ? idleWorker : startMergeWorker(services, { pollMs: options.workerPollMs ?? 500 });
  webhooks = options.runWorker === false ? idleWorker : startWebhookWorker(services, { retryBaseMs: options.webhookRetryBaseMs ?? 1000, pollMs: options.workerPollMs ?? 1000 });
  const shutdown = new AbortController();
  const limiter = createRateLimiter(options.rateLimits ?? rateLimitsFromEnv());
  const gate = createMessengerGate(services, limiter);
  const ping = createPingEndpoint(services, gate);
  const app = createApp(services, { limiter, gate, ping, log, signal: shutdown.signal, keepAliveMs: options.keepAliveMs ?? 15_000 });
  return {
    app,
    ping,
    log,
    services,
    database,
    worker,
    webhooks,
    hub,
    async close() {
      if (shutdown.signal.aborted) return; // closing twice is harmless
      shutdown.abort();
      await worker.stop();
      await webhooks.stop();
      await services.lastSeen.stop();
      await fanout?.close();
      await database.close();
    },
  };
}
