/**
 * The node:http fast path for pings answers exactly as the Hono route does: the same request sent
 * both ways (a real socket to the fast path, the app's fetch to Hono) gets the same status, the
 * same headers that matter and the same body, for good calls and for every kind of refusal.
 */
import { createServer, request as httpRequest, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { withPingFastPath } from '../../../server-stub/http/node-fast-path.ts';
import type { App } from '../../../server-stub/storage/apps.ts';
import { BASE, startTestServer, userHash, type TestServer } from '../../support/server-app.ts';

interface Answer {
  status: number;
  headers: Record<string, string | undefined>;
  body: unknown;
}

const COMPARED_HEADERS = ['content-type', 'content-length', 'transfer-encoding', 'access-control-allow-origin', 'vary', 'retry-after'];

let t: TestServer;
let server: Server;
let port: number;
/** The same app behind @hono/node-server alone, for comparison over a real socket too. */
let honoServer: Server;
let honoPort: number;
let fallbackCalls: number;
let app: App;

async function serve(options: Parameters<typeof startTestServer>[0] = {}) {
  t = await startTestServer(options);
  app = await t.createApp({ allowed_origins: ['https://shop.example'], require_verification: true });
  fallbackCalls = 0;
  const hono = getRequestListener(t.parley.app.fetch);
  const fallback: RequestListener = (req, res) => {
    fallbackCalls++;
    void hono(req, res);
  };
  server = createServer(withPingFastPath(fallback, t.parley.ping, () => undefined));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  honoServer = createServer(hono);
  await new Promise<void>((resolve) => honoServer.listen(0, '127.0.0.1', resolve));
  honoPort = (honoServer.address() as AddressInfo).port;
}

afterEach(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await new Promise<void>((resolve) => honoServer.close(() => resolve()));
  await t.close();
});

/** Sends raw bytes over a real socket (so bodies that are not valid UTF-8 arrive as sent). */
function overSocket(path: string, body: Buffer, headers: Record<string, string>, chunked = false, to = port): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: to, path, method: 'POST', headers: chunked ? headers : { ...headers, 'content-length': String(body.length) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown = text;
        try {
          parsed = text ? JSON.parse(text) : null;
        } catch {
          // not JSON (an adapter's own plain answer): compared as text
        }
        resolve({ status: res.statusCode!, headers: Object.fromEntries(COMPARED_HEADERS.map((h) => [h, res.headers[h] as string | undefined])), body: parsed });
      });
    });
    req.on('error', reject);
    if (chunked) {
      req.write(body.subarray(0, 5));
      req.end(body.subarray(5));
    } else req.end(body);
  });
}

async function throughHono(path: string, body: Buffer, headers: Record<string, string>): Promise<Answer> {
  const res = await t.parley.app.fetch(new Request(`${BASE}${path}`, { method: 'POST', headers, body: new Uint8Array(body) }));
  const text = await res.text();
  return { status: res.status, headers: Object.fromEntries(COMPARED_HEADERS.map((h) => [h, res.headers.get(h) ?? undefined])), body: text ? JSON.parse(text) : null };
}

/**
 * Both ways, in this order: the fast path first, then Hono (so a known visitor is known to both),
 * Hono through its node adapter on a socket (every header compared) and through `app.fetch`.
 */
async function both(body: string | Buffer, headers: Record<string, string> = { 'content-type': 'application/json' }, viaFetchToo = true) {
  const path = '/v1/messenger/ping';
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  const fast = await overSocket(path, bytes, headers);
  const hono = await overSocket(path, bytes, headers, false, honoPort);
  if (viaFetchToo) {
    const viaFetch = await throughHono(path, bytes, headers);
    expect({ status: viaFetch.status, body: viaFetch.body }).toEqual({ status: hono.status, body: hono.body });
  }
  return { fast, hono };
}

const ping = (extra: Record<string, unknown> = {}) => JSON.stringify({ app_id: app.id, visitor_id: 'v-fast-path-1', ...extra });

describe('ping fast path (node:http) answers as the Hono route does', () => {
  beforeEach(async () => serve());

  it('a known visitor: the same answer both ways, and the fast path served it', async () => {
    await overSocket('/v1/messenger/ping', Buffer.from(ping()), { 'content-type': 'application/json' }); // now known
    const { fast, hono } = await both(ping());
    expect(fast.status).toBe(200);
    expect(fast).toEqual(hono);
    expect(fallbackCalls).toBe(0);
  });

  it('a calling origin the app allows is named in the answer (CORS), both ways', async () => {
    const headers = { 'content-type': 'application/json', origin: 'https://shop.example' };
    await overSocket('/v1/messenger/ping', Buffer.from(ping()), headers);
    const { fast, hono } = await both(ping(), headers);
    expect(fast.headers['access-control-allow-origin']).toBe('https://shop.example');
    expect(fast).toEqual(hono);
  });

  it.each([
    ['not JSON', '{"app_id":', 400],
    ['a JSON array', '[1,2]', 400],
    ['a NUL character', '{"app_id":"a\\u0000b","visitor_id":"v-fast-path-1"}', 400],
    ['a NUL after an escaped backslash', '{"app_id":"a\\\\\\u0000b","visitor_id":"v-fast-path-1"}', 400],
    ['a lone surrogate', '{"app_id":"\\ud800","visitor_id":"v-fast-path-1"}', 400],
    ['an empty body', '', 400],
    ['a junk identity', null, 400],
    ['an unknown app', null, 404],
    ['a forged identity', null, 401],
  ])('%s: the same problem+json both ways', async (what, raw, status) => {
    let body = raw ?? '';
    if (what === 'a junk identity') body = ping({ user: { user_id: 'undefined', user_hash: 'x' } });
    if (what === 'an unknown app') body = JSON.stringify({ app_id: 'app_doesnotexist0000000000', visitor_id: 'v-fast-path-1' });
    if (what === 'a forged identity') body = ping({ user: { user_id: 'u-1', user_hash: userHash('wrong secret', 'u-1') } });
    const { fast, hono } = await both(body);
    expect(fast.headers['content-type']).toBe('application/problem+json');
    expect(fast.status).toBe(status);
    expect(fast).toEqual(hono);
  });

  it('a Host header the adapter refuses is left to it: the same answer both ways', async () => {
    // (Not through app.fetch: a fetch Request carries no Host header of its own.)
    const { fast, hono } = await both(ping(), { 'content-type': 'application/json', host: 'bad host' }, false);
    expect(fast.status).toBe(400);
    expect(fast).toEqual(hono);
    expect(fallbackCalls).toBe(1);
  });

  it('bytes that are not UTF-8: 400 both ways', async () => {
    const body = Buffer.concat([Buffer.from(`{"app_id":"${app.id}","visitor_id":"`), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);
    const { fast, hono } = await both(body);
    expect(fast.status).toBe(400);
    expect(fast).toEqual(hono);
  });

  it('a foreign origin: 403 both ways, and nothing of the app is revealed', async () => {
    const { fast, hono } = await both(ping(), { 'content-type': 'application/json', origin: 'https://evil.example' });
    expect(fast.status).toBe(403);
    expect(fast).toEqual(hono);
  });

  it('what the fast path does not take whole goes to Hono unread: too large, chunked, a query string', async () => {
    const large = await overSocket('/v1/messenger/ping', Buffer.from(ping({ padding: 'x'.repeat(70_000) })), { 'content-type': 'application/json' });
    expect(large.status).toBe(413);
    const chunked = await overSocket('/v1/messenger/ping', Buffer.from(ping()), { 'content-type': 'application/json', 'transfer-encoding': 'chunked' }, true);
    expect(chunked.status).toBe(200);
    const query = await overSocket('/v1/messenger/ping?x=1', Buffer.from(ping()), { 'content-type': 'application/json' });
    expect(query.status).toBe(200);
    expect(fallbackCalls).toBe(3);
  });
});

describe('ping fast path under rate limits', () => {
  // Three calls a round below: the fast path, Hono on a socket, Hono through app.fetch.
  beforeEach(async () => serve({ rateLimits: { perVisitor: 3, perIp: 1000, perToken: 1000, windowMs: 60_000 } }));

  it('the limit is shared by both paths and refused alike (429 with Retry-After)', async () => {
    const { fast: first, hono: second } = await both(ping());
    expect([first.status, second.status]).toEqual([200, 200]);
    const { fast, hono } = await both(ping());
    expect(fast.status).toBe(429);
    expect(fast.headers['retry-after']).toMatch(/^\d+$/);
    expect(fast).toEqual(hono);
  });
});
