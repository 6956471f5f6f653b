/**
 * Fixed-window rate limits per key (visitor, IP, admin token). In memory: good for one instance;
 * several instances each count their own share. `PARLEY_RATE_LIMIT=off` switches them off.
 */
import { ServiceError } from '../services/context.ts';

export interface RateLimits {
  perVisitor: number;
  perIp: number;
  perToken: number;
  windowMs: number;
}

export const DEFAULT_LIMITS: RateLimits = { perVisitor: 120, perIp: 1200, perToken: 1200, windowMs: 60_000 };

export interface RateLimiter {
  /** Throws 429 (with the seconds to wait) when `key` went over `max` in the current window. */
  hit(key: string, max: number): void;
  readonly limits: RateLimits;
}

export function createRateLimiter(limits: RateLimits | 'off', now: () => number = Date.now): RateLimiter {
  if (limits === 'off') return { hit: () => undefined, limits: { perVisitor: Infinity, perIp: Infinity, perToken: Infinity, windowMs: 60_000 } };
  const windows = new Map<string, { start: number; count: number }>();
  return {
    limits,
    hit(key, max) {
      const t = now();
      let w = windows.get(key);
      if (!w || t - w.start >= limits.windowMs) {
        if (windows.size > 100_000) windows.clear(); // bounded memory under a flood of keys
        w = { start: t, count: 0 };
        windows.set(key, w);
      }
      w.count++;
      if (w.count > max) {
        const retry = Math.max(1, Math.ceil((w.start + limits.windowMs - t) / 1000));
        throw new ServiceError(429, 'rate-limited', `too many requests: retry in ${retry} s`, { 'retry-after': String(retry) });
      }
    },
  };
}
