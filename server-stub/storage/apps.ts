/** Apps (workspaces): credentials, verification setting and allowed origins. */
import type { Kysely } from 'kysely';
import { randomToken, type Clock } from '../ids.ts';
import type { AppsTable, Database } from './schema.ts';

export interface App {
  id: string;
  name: string;
  admin_token: string;
  identity_secret: string;
  webhook_secret: string;
  require_verification: boolean;
  allowed_origins: string[];
  created_at: string;
}

function toApp(row: AppsTable): App {
  return { ...row, require_verification: row.require_verification === 1, allowed_origins: JSON.parse(row.allowed_origins) as string[] };
}

export interface NewApp {
  id?: string;
  name: string;
  require_verification?: boolean;
  allowed_origins?: string[];
}

export async function createApp(db: Kysely<Database>, clock: Clock, input: NewApp): Promise<App> {
  const row: AppsTable = {
    id: input.id ?? `app_${randomToken(8)}`,
    name: input.name,
    admin_token: `pat_${randomToken(24)}`,
    identity_secret: randomToken(32),
    webhook_secret: randomToken(32),
    require_verification: input.require_verification ? 1 : 0,
    allowed_origins: JSON.stringify(input.allowed_origins ?? []),
    created_at: clock.now().toISOString(),
  };
  await db.insertInto('apps').values(row).execute();
  return toApp(row);
}

export async function findApp(db: Kysely<Database>, id: string): Promise<App | null> {
  const row = await db.selectFrom('apps').selectAll().where('id', '=', id).executeTakeFirst();
  return row ? toApp(row) : null;
}

export async function findAppByToken(db: Kysely<Database>, token: string): Promise<App | null> {
  const row = await db.selectFrom('apps').selectAll().where('admin_token', '=', token).executeTakeFirst();
  return row ? toApp(row) : null;
}

export const DEMO_APP_ID = 'demo';

/** The local demo app, created on first start: any origin, identity verification on. */
export async function ensureDemoApp(db: Kysely<Database>, clock: Clock): Promise<{ app: App; created: boolean }> {
  const existing = await findApp(db, DEMO_APP_ID);
  if (existing) return { app: existing, created: false };
  try {
    const app = await createApp(db, clock, { id: DEMO_APP_ID, name: 'Demo', require_verification: true, allowed_origins: ['*'] });
    return { app, created: true };
  } catch (error) {
    // Two instances starting at once: the other one created it.
    const winner = await findApp(db, DEMO_APP_ID);
    if (winner) return { app: winner, created: false };
    throw error;
  }
}

/**
 * Apps by id, kept for a few seconds: every messenger call names its app, and apps change rarely
 * (the CLI or an operator). A change made elsewhere is seen within `ttlMs`.
 */
export function createAppCache(db: Kysely<Database>, ttlMs = 5000, now: () => number = Date.now) {
  const entries = new Map<string, { app: App | null; at: number }>();
  return async (id: string): Promise<App | null> => {
    const hit = entries.get(id);
    if (hit && now() - hit.at < ttlMs) return hit.app;
    const app = await findApp(db, id);
    if (entries.size > 10_000) entries.clear(); // unknown ids cannot grow it without bound
    entries.set(id, { app, at: now() });
    return app;
  };
}

/**
 * An allowed origin as browsers send it in the Origin header (`https://shop.example`, lower-case
 * host, no path, default port dropped), or null when it is not an http(s) origin. `*` stays `*`.
 * Written as an owner types it (`https://Shop.example/`), it would never match a browser.
 */
export function normaliseOrigin(input: string): string | null {
  const text = input.trim();
  if (text === '*') return '*';
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return null;
  if (url.username || url.password || url.search || url.hash || (url.pathname !== '/' && url.pathname !== '')) return null;
  return url.origin;
}

/** Replaces an app's allowed origins (already normalised). Instances see it within their app cache's TTL. */
export async function setAllowedOrigins(db: Kysely<Database>, id: string, origins: string[]): Promise<App | null> {
  await db.updateTable('apps').set({ allowed_origins: JSON.stringify(origins) }).where('id', '=', id).execute();
  return findApp(db, id);
}

/** Whether a browser on `origin` may call this app's messenger endpoints. */
export function originAllowed(app: App, origin: string | undefined): boolean {
  if (origin === undefined) return true; // not a cross-origin browser call
  return app.allowed_origins.includes('*') || app.allowed_origins.includes(origin);
}
