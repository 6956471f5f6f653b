/**
 * What every widget call goes through before its service, whichever way it arrived (the Hono
 * routes, or the node:http fast path for pings): the app it names must exist (404), allow the
 * calling origin (403), and the caller must be within its rate limits (429).
 */
import { createAppCache, originAllowed, type App } from '../storage/apps.ts';
import { ServiceError, type Services } from '../services/context.ts';
import type * as messenger from '../services/messenger.ts';
import type { RateLimiter } from './rate-limit.ts';
import * as schemas from './schemas.ts';

export type MessengerGate = (appId: string, visitorId: string, origin: string | undefined, ip: string) => Promise<App>;

export function createMessengerGate(s: Services, limiter: RateLimiter): MessengerGate {
  const findApp = createAppCache(s.db);
  return async (appId, visitorId, origin, ip) => {
    limiter.hit(`ip:${ip}`, limiter.limits.perIp);
    const app = await findApp(appId);
    if (!app) throw new ServiceError(404, 'not-found', 'app not found');
    if (!originAllowed(app, origin)) throw new ServiceError(403, 'origin-not-allowed', 'this origin may not call this app');
    limiter.hit(`v:${app.id}:${visitorId}`, limiter.limits.perVisitor);
    return app;
  };
}

type UserInput = { user_id?: string | undefined; email?: string | undefined; name?: string | undefined; user_hash?: string | undefined } | undefined;

/** The identity a call claims (verified by the service against the app's secret, R14). */
export function claim(user: UserInput): messenger.ClaimedUser | undefined {
  if (!user) return undefined;
  return { identity: schemas.identityOf(user.user_id, user.email), signed: user.user_id ?? user.email ?? '', name: user.name, user_hash: user.user_hash };
}
