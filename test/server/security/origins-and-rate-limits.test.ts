/**
 * Browsers on origins an app does not allow get 403 on every messenger endpoint and write nothing.
 * Rate limits answer 429 with Retry-After per visitor, per IP and per admin token, are
 * configurable, and can be switched off (option or PARLEY_RATE_LIMIT=off).
 */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createApp, type App } from '../../../server-stub/storage/apps.ts';
import type { RateLimits } from '../../../server-stub/http/rate-limit.ts';
import { startServer } from '../../../server-stub/main.ts';
import { BASE, startTestServer, type TestServer } from '../../support/server-app.ts';
import { dbFingerprint } from '../../support/db-fingerprint.ts';
import { operator, widget } from '../http/helpers.ts';

const servers: TestServer[] = [];
async function server(options: Parameters<typeof startTestServer>[0] = {}) {
  const t = await startTestServer(options);
  servers.push(t);
  return t;
}
afterEach(async () => {
  while (servers.length > 0) await servers.pop()!.close();
});

/** Every messenger endpoint, as [name, method, path, body] for one visitor and one conversation. */
function messengerCalls(app: App, visitorId: string, conversationId: string) {
  const q = `app_id=${app.id}&visitor_id=${visitorId}`;
  return [
    ['ping', 'POST', '/v1/messenger/ping', { app_id: app.id, visitor_id: visitorId, lead: { email: 'x@example.com' } }],
    ['start', 'POST', '/v1/messenger/conversations', { app_id: app.id, visitor_id: visitorId, body: 'hi', client_id: randomUUID() }],
    ['list', 'GET', `/v1/messenger/conversations?${q}`, undefined],
    ['send', 'POST', `/v1/messenger/conversations/${conversationId}/messages`, { app_id: app.id, visitor_id: visitorId, body: 'more', client_id: randomUUID() }],
    ['read messages', 'GET', `/v1/messenger/conversations/${conversationId}/messages?${q}`, undefined],
    ['mark read', 'POST', `/v1/messenger/conversations/${conversationId}/read`, { app_id: app.id, visitor_id: visitorId }],
    ['event', 'POST', '/v1/messenger/events', { app_id: app.id, visitor_id: visitorId, name: 'clicked' }],
    ['stream', 'GET', `/v1/messenger/stream?${q}`, undefined],
    ['logout', 'POST', '/v1/messenger/logout', { app_id: app.id, visitor_id: visitorId }],
  ] as const;
}

async function send(t: TestServer, method: string, path: string, body: unknown, headers: Record<string, string> = {}, env?: unknown) {
  const h: Record<string, string> = { ...headers };
  if (body !== undefined) h['content-type'] = 'application/json';
  const res = await t.parley.app.fetch(new Request(`${BASE}${path}`, { method, headers: h, body: body === undefined ? null : JSON.stringify(body) }), env);
  if (res.headers.get('content-type')?.includes('text/event-stream')) await res.body?.cancel();
  else await res.arrayBuffer();
  return res;
}

describe('origins', () => {
  it('a disallowed origin gets 403 on every messenger endpoint and nothing is written', async () => {
    const t = await server();
    const app = await t.createApp({ allowed_origins: ['https://shop.example'] });
    const allowed = { origin: 'https://shop.example' };
    const w = widget(t, app);
    const conv = (await t.call('POST', '/v1/messenger/conversations', { app_id: app.id, visitor_id: w.visitorId, body: 'hi', client_id: randomUUID() }, { headers: allowed })).body.conversation.id as string;
    const before = await dbFingerprint(t.parley.services.db);
    const bad = ['https://evil.example', 'null', 'https://shop.example.evil.example', 'http://shop.example', 'https://shop.example:8443', 'https://SHOP.example.', 'https://evil.example/https://shop.example'];
    let refused = 0;
    for (const origin of bad) {
      for (const visitorId of [w.visitorId, randomUUID()]) {
        for (const [name, method, path, body] of messengerCalls(app, visitorId, conv)) {
          const res = await send(t, method, path, body, { origin });
          expect(res.status, `${name} from ${origin}`).toBe(403);
          expect(res.headers.get('content-type'), name).toContain('application/problem+json');
          refused++;
        }
      }
    }
    expect(refused).toBe(bad.length * 2 * 9);
    expect(await dbFingerprint(t.parley.services.db)).toBe(before);
    // The allowed origin and server-side calls (no Origin) are answered on every endpoint.
    for (const [name, method, path, body] of messengerCalls(app, w.visitorId, conv)) {
      expect((await send(t, method, path, body, allowed)).status, name).toBeLessThan(300);
    }
  });

  it('an app that allows no origin refuses every browser, and the answer is the same for a known and an unknown visitor', async () => {
    const t = await server();
    const closed = await t.createApp({ allowed_origins: [] });
    const known = widget(t, closed);
    const conv = (await known.start('server side')).body.conversation.id as string;
    const before = await dbFingerprint(t.parley.services.db);
    for (const visitorId of [known.visitorId, randomUUID()]) {
      for (const [name, method, path, body] of messengerCalls(closed, visitorId, conv)) {
        expect((await send(t, method, path, body, { origin: 'https://any.example' })).status, name).toBe(403);
      }
    }
    expect(await dbFingerprint(t.parley.services.db)).toBe(before);
  });
});

describe('admin API origins', () => {
  const bulk = (t: TestServer, app: App, headers: Record<string, string>) =>
    send(t, 'POST', '/v1/merges/bulk', { dry_run: true }, { authorization: `Bearer ${app.admin_token}`, ...headers });

  it('answers the console on its own host, also behind a proxy that ends TLS (https page, http request) or rewrites Host', async () => {
    const t = await server();
    const app = await t.createApp();
    expect((await bulk(t, app, { origin: BASE })).status).toBe(200);
    // The browser was on https://parley.test; the proxy forwarded plain http to us.
    expect((await bulk(t, app, { origin: BASE.replace('http:', 'https:') })).status).toBe(200);
    // A proxy that addressed us by an internal name and said which host the browser asked for.
    const behind = await t.parley.app.fetch(new Request('http://10.0.0.7:8080/v1/merges/bulk', {
      method: 'POST', body: '{}',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${app.admin_token}`, origin: 'https://console.example', 'x-forwarded-host': 'console.example' },
    }));
    expect(behind.status).toBe(200);
  });

  it('refuses a browser on another origin, an opaque ("null") origin and a malformed one with 403, writing nothing', async () => {
    const t = await server();
    const app = await t.createApp();
    await operator(t, app).createContact({ role: 'user', user_id: 'u1' });
    const before = await dbFingerprint(t.parley.services.db);
    for (const origin of ['https://evil.example', 'https://parley.test.evil.example', 'null', 'not a url']) {
      const res = await send(t, 'POST', '/v1/contacts', { role: 'user', user_id: 'u2' }, { authorization: `Bearer ${app.admin_token}`, origin });
      expect(res.status, origin).toBe(403);
    }
    expect(await dbFingerprint(t.parley.services.db)).toBe(before);
  });
});

describe('rate limits', () => {
  const limits = (l: Partial<RateLimits>): RateLimits => ({ perVisitor: 1000, perIp: 1000, perToken: 1000, windowMs: 60_000, ...l });

  const expect429 = async (res: Response, what: string) => {
    expect(res.status, what).toBe(429);
    const retry = Number(res.headers.get('retry-after'));
    expect(Number.isInteger(retry) && retry >= 1 && retry <= 60, `${what}: Retry-After ${res.headers.get('retry-after')}`).toBe(true);
  };

  it('per visitor: every messenger call counts; the visitor over the limit gets 429 with Retry-After, writing nothing; others go on', async () => {
    const t = await server({ rateLimits: limits({ perVisitor: 4 }) });
    const app = await t.createApp();
    const w = widget(t, app);
    expect((await w.ping()).status).toBe(200);
    const conv = (await w.start('hi')).body.conversation.id as string;
    expect((await w.event('a')).status).toBe(202);
    expect((await w.send(conv, 'fourth call')).status).toBe(201);
    const before = await dbFingerprint(t.parley.services.db);
    for (const [name, method, path, body] of messengerCalls(app, w.visitorId, conv)) await expect429(await send(t, method, path, body), name);
    expect(await dbFingerprint(t.parley.services.db)).toBe(before);
    expect((await widget(t, app).ping()).status).toBe(200);
    // The same visitor id in another app has a budget of its own.
    const other = await t.createApp();
    expect((await widget(t, other, w.visitorId).ping()).status).toBe(200);
  });

  it('per IP: in-process requests from one address share a budget; another address is not limited', async () => {
    const t = await server({ rateLimits: limits({ perIp: 5 }) });
    const app = await t.createApp();
    const from = (ip: string) => ({ incoming: { socket: { remoteAddress: ip } } });
    const ping = (ip: string) => send(t, 'POST', '/v1/messenger/ping', { app_id: app.id, visitor_id: randomUUID() }, {}, from(ip));
    for (let i = 0; i < 5; i++) expect((await ping('203.0.113.7')).status).toBe(200);
    await expect429(await ping('203.0.113.7'), 'sixth visitor from one IP');
    expect((await ping('198.51.100.9')).status).toBe(200);
  });

  it('per IP on a real port: the socket address is what counts', async () => {
    const running = await startServer({ port: 0, sqlitePath: `${(await server()).dbPath}.port.db`, quiet: true, demo: false, runWorker: false, log: () => undefined, rateLimits: limits({ perIp: 3 }) });
    try {
      const app = await createApp(running.parley.services.db, running.parley.services.clock, { name: 'Port', allowed_origins: ['*'] });
      const ping = () => fetch(`${running.url}/v1/messenger/ping`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ app_id: app.id, visitor_id: randomUUID() }) });
      for (let i = 0; i < 3; i++) expect((await ping()).status).toBe(200);
      await expect429(await ping(), 'fourth request from 127.0.0.1');
    } finally {
      await running.close();
    }
  });

  it('per admin token: the token over the limit gets 429 with Retry-After; another app\'s token is not limited', async () => {
    const t = await server({ rateLimits: limits({ perToken: 3 }) });
    const app = await t.createApp();
    const other = await t.createApp();
    const op = operator(t, app);
    expect((await op.contacts()).status).toBe(200);
    expect((await op.createContact({ role: 'user', user_id: 'u1' })).status).toBe(201);
    expect((await op.merges()).status).toBe(200);
    const before = await dbFingerprint(t.parley.services.db);
    await expect429(await send(t, 'POST', '/v1/contacts', { role: 'user', user_id: 'u2' }, { authorization: `Bearer ${app.admin_token}` }), 'create');
    await expect429(await send(t, 'GET', '/v1/exports/contacts.csv', undefined, { authorization: `Bearer ${app.admin_token}` }), 'export');
    expect(await dbFingerprint(t.parley.services.db)).toBe(before);
    expect((await operator(t, other).contacts()).status).toBe(200);
    // A wrong token is refused before it counts (401, not 429).
    expect((await send(t, 'GET', '/v1/contacts', undefined, { authorization: 'Bearer pat_wrong' })).status).toBe(401);
  });

  it('the window is configurable: after windowMs the visitor may call again', async () => {
    const t = await server({ rateLimits: limits({ perVisitor: 2, windowMs: 300 }) });
    const app = await t.createApp();
    const w = widget(t, app);
    await w.ping();
    await w.ping();
    const limited = await w.ping();
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('1');
    await new Promise((r) => setTimeout(r, 350));
    expect((await w.ping()).status).toBe(200);
  });

  it("built-in limits apply by default; rateLimits: 'off' and PARLEY_RATE_LIMIT=off switch them off", async () => {
    const flood = async (t: TestServer) => {
      const app = await t.createApp();
      const w = widget(t, app);
      const statuses = new Set<number>();
      for (let i = 0; i < 130; i++) statuses.add((await w.ping()).status);
      return [...statuses].sort();
    };
    const saved = process.env['PARLEY_RATE_LIMIT'];
    try {
      delete process.env['PARLEY_RATE_LIMIT'];
      expect(await flood(await server({ rateLimits: undefined }))).toEqual([200, 429]);
      expect(await flood(await server({ rateLimits: 'off' }))).toEqual([200]);
      process.env['PARLEY_RATE_LIMIT'] = 'off';
      expect(await flood(await server({ rateLimits: undefined }))).toEqual([200]);
    } finally {
      if (saved === undefined) delete process.env['PARLEY_RATE_LIMIT'];
      else process.env['PARLEY_RATE_LIMIT'] = saved;
    }
  });
});
