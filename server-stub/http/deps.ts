/** What the HTTP layer needs beyond the services. */
import type { Context } from 'hono';
import type { MessengerGate } from './messenger-gate.ts';
import type { PingEndpoint } from './ping-endpoint.ts';
import type { RateLimiter } from './rate-limit.ts';

export interface HttpDeps {
  limiter: RateLimiter;
  /** App, origin and rate-limit checks of every widget call. */
  gate: MessengerGate;
  /** The ping endpoint (also served by the node:http fast path). */
  ping: PingEndpoint;
  /** One structured line per request. */
  log: (line: Record<string, unknown>) => void;
  /** Aborted when the server shuts down, so open streams end. */
  signal: AbortSignal;
  keepAliveMs: number;
}

/** The peer address when served by @hono/node-server; tests through app.request() have none. */
export function clientIp(c: Context): string {
  const env = c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined;
  return env?.incoming?.socket?.remoteAddress ?? 'local';
}
