/**
 * Load (issue 6): while a load generator (autocannon) sends mixed widget and operator traffic to the
 * real server over real sockets, no request fails except by rate limit (429), and no message a
 * visitor was told was stored is missing. Prints its figures. Bounded: a few seconds, fixed shape.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import autocannon, { type RequestSpec, type Result } from 'autocannon';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestListener } from '../../server-stub/main.ts';
import type { App } from '../../server-stub/storage/apps.ts';
import { startTestServer, testDialect, userHash, type TestServer } from '../support/server-app.ts';

const SECONDS = 3;
const PER_VISITOR = 40;

let t: TestServer;
let server: Server;
let url: string;
let app: App;

beforeAll(async () => {
  // Limits low enough that the flooding visitor below meets them, high enough for everyone else.
  t = await startTestServer({ rateLimits: { perVisitor: PER_VISITOR, perIp: 1_000_000, perToken: 1_000_000, windowMs: 60_000 } });
  app = await t.createApp();
  server = createServer(requestListener(t.parley));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await t.close();
});

const JSON_HEADERS = { 'content-type': 'application/json' };

describe('load: mixed traffic on the real server', () => {
  it('no request fails except by rate limit, and every acknowledged message is stored', async () => {
    let acknowledged = 0;
    const json = (o: unknown) => JSON.stringify(o);
    const visitor = (ctx: Record<string, unknown>) => ctx['visitor'] as string;
    // One visitor's visit, over and over on each connection: a new visitor's first page view, more
    // page views, a first message, a second one, an event, reading the conversation list, logging
    // in, and a page view as the signed-in user.
    const visit: RequestSpec[] = [
      { method: 'POST', path: '/v1/messenger/ping', headers: JSON_HEADERS, setupRequest: (req, ctx) => {
        ctx['visitor'] = randomUUID();
        return { ...req, body: json({ app_id: app.id, visitor_id: visitor(ctx) }) };
      } },
      ...Array.from({ length: 3 }, (): RequestSpec => ({ method: 'POST', path: '/v1/messenger/ping', headers: JSON_HEADERS, setupRequest: (req, ctx) => ({ ...req, body: json({ app_id: app.id, visitor_id: visitor(ctx) }) }) })),
      { method: 'POST', path: '/v1/messenger/conversations', headers: JSON_HEADERS,
        setupRequest: (req, ctx) => ({ ...req, body: json({ app_id: app.id, visitor_id: visitor(ctx), body: 'Hello, is this in stock?', client_id: randomUUID() }) }),
        onResponse: (status, body, ctx) => {
          if (status === 201) {
            acknowledged++;
            ctx['conversation'] = JSON.parse(body).conversation.id;
          }
        } },
      { method: 'POST', path: '/v1/messenger/conversations/placeholder/messages', headers: JSON_HEADERS,
        setupRequest: (req, ctx) => ({ ...req, path: `/v1/messenger/conversations/${ctx['conversation'] as string}/messages`, body: json({ app_id: app.id, visitor_id: visitor(ctx), body: 'And in blue?', client_id: randomUUID() }) }),
        onResponse: (status) => {
          if (status === 201) acknowledged++;
        } },
      { method: 'POST', path: '/v1/messenger/events', headers: JSON_HEADERS, setupRequest: (req, ctx) => ({ ...req, body: json({ app_id: app.id, visitor_id: visitor(ctx), name: 'product_viewed' }) }) },
      { method: 'GET', path: '/', setupRequest: (req, ctx) => ({ ...req, path: `/v1/messenger/conversations?app_id=${app.id}&visitor_id=${visitor(ctx)}` }) },
      { method: 'POST', path: '/v1/messenger/ping', headers: JSON_HEADERS, setupRequest: (req, ctx) => {
        const userId = `u-${visitor(ctx)}`;
        return { ...req, body: json({ app_id: app.id, visitor_id: visitor(ctx), user: { user_id: userId, email: `${userId}@example.com`, user_hash: userHash(app.identity_secret, userId) } }) };
      } },
      { method: 'POST', path: '/v1/messenger/ping', headers: JSON_HEADERS, setupRequest: (req, ctx) => ({ ...req, body: json({ app_id: app.id, visitor_id: visitor(ctx) }) }) },
    ];
    const token = { authorization: `Bearer ${app.admin_token}` };
    const operator: RequestSpec[] = [
      { method: 'GET', path: '/v1/contacts?role=user', headers: token },
      { method: 'GET', path: '/v1/merges', headers: token },
      { method: 'POST', path: '/v1/merges/bulk', headers: { ...token, ...JSON_HEADERS }, body: json({ dry_run: true }) },
    ];
    const flood: RequestSpec[] = [{ method: 'POST', path: '/v1/messenger/ping', headers: JSON_HEADERS, body: json({ app_id: app.id, visitor_id: 'one-visitor-flooding' }) }];

    const run = (requests: RequestSpec[], connections: number) => autocannon({ url, connections, duration: SECONDS, timeout: 10, requests });
    const [visitors, operators, flooding] = await Promise.all([run(visit, 10), run(operator, 2), run(flood, 2)]);

    const report = (name: string, r: Result) =>
      `${name.padEnd(10)} ${Math.round(r.requests.total / r.duration).toString().padStart(6)} req/s  p50 ${r.latency.p50} ms  p99 ${r.latency.p99} ms  ` +
      `answers ${Object.entries(r.statusCodeStats).map(([code, s]) => `${code}×${s.count}`).join(' ')}  errors ${r.errors}  timeouts ${r.timeouts}`;
    console.log(`load (${testDialect}, ${SECONDS} s):\n  ${report('visitors', visitors)}\n  ${report('operators', operators)}\n  ${report('flooding', flooding)}`);

    for (const r of [visitors, operators, flooding]) {
      expect(r.errors).toBe(0);
      expect(r.timeouts).toBe(0);
      expect(Object.keys(r.statusCodeStats).filter((code) => !['200', '201', '202', '204', '429'].includes(code))).toEqual([]);
    }
    // The flooding visitor met its limit; the others did real work.
    expect(flooding.statusCodeStats['429']?.count ?? 0).toBeGreaterThan(0);
    expect(flooding.statusCodeStats['200']?.count).toBe(PER_VISITOR);
    expect(visitors['2xx']).toBeGreaterThan(100);
    expect(operators['2xx']).toBeGreaterThan(10);

    // Every message a visitor got a 201 for is in the database. A few more may be: requests the
    // server answered as the generator stopped, whose answers it no longer read (one per connection at most).
    await t.drain();
    const stored = await t.parley.services.db.selectFrom('messages').select((eb) => eb.fn.countAll<number>().as('n')).where('app_id', '=', app.id).where('author_type', '=', 'contact').executeTakeFirstOrThrow();
    expect(Number(stored.n)).toBeGreaterThanOrEqual(acknowledged);
    expect(Number(stored.n)).toBeLessThanOrEqual(acknowledged + 10);
  }, 60_000);
});
