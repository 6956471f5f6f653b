import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { App } from '../../server-stub/storage/apps.ts';
import { retryDelay } from '../../server-stub/services/webhook-worker.ts';
import { startTestServer, type TestServer } from '../support/server-app.ts';
import { operator, widget } from './http/helpers.ts';

interface Received { headers: Record<string, string | string[] | undefined>; body: string; json: any }

/** A real local HTTP receiver; `answer` decides each status code in turn. */
async function receiver(answer: (n: number) => number = () => 200) {
  const received: Received[] = [];
  let n = 0;
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      received.push({ headers: req.headers, body, json: JSON.parse(body) });
      res.writeHead(answer(n++)).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${address.port}/hooks`,
    received,
    async waitFor(pred: (r: Received[]) => boolean, ms = 5000) {
      const end = Date.now() + ms;
      while (!pred(received) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      return received;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

let t: TestServer;
let app: App;
beforeEach(async () => {
  t = await startTestServer({ webhookRetryBaseMs: 30 });
  app = await t.createApp();
});
afterEach(async () => t.close());

describe('webhooks', () => {
  it('contact.merged carries both ids, the trigger and the counts; every delivery is signed', async () => {
    const hook = await receiver();
    const created = await t.call('POST', '/v1/webhooks', { url: hook.url }, { token: app.admin_token });
    expect(created.status).toBe(201);
    const w = widget(t, app);
    const lead = await w.start('hello');
    const login = await w.login({ user_id: 'u-hook' });
    await t.drain();
    const got = await hook.waitFor((r) => r.some((x) => x.json.type === 'contact.merged'));
    const types = got.map((r) => r.json.type);
    expect(types).toEqual(expect.arrayContaining(['contact.created', 'conversation.created', 'message.created', 'contact.merged']));
    const merged = got.find((r) => r.json.type === 'contact.merged')!;
    expect(merged.json.data).toMatchObject({ lead_id: lead.body.contact.id, user_id: login.body.contact.id, trigger: 'cookie', conversations_moved: 1, events_moved: 0 });
    for (const r of got) {
      const expected = `sha256=${createHmac('sha256', app.webhook_secret).update(r.body).digest('hex')}`;
      expect(r.headers['parley-signature']).toBe(expected);
      expect(r.headers['parley-event']).toBe(r.json.type);
    }
    await hook.close();
  });

  it('failed deliveries are retried with exponential backoff, and the delivery log shows each attempt', async () => {
    const hook = await receiver((n) => (n < 2 ? 500 : 200));
    const created = await t.call('POST', '/v1/webhooks', { url: hook.url, events: ['contact.created'] }, { token: app.admin_token });
    await operator(t, app).createContact({ role: 'user', user_id: 'u1' });
    await hook.waitFor((r) => r.length >= 3);
    await t.parley.webhooks.drain();
    const log = await t.call('GET', `/v1/webhooks/${created.body.id}/deliveries`, undefined, { token: app.admin_token });
    expect(log.body.data).toHaveLength(1);
    expect(log.body.data[0]).toMatchObject({ event: 'contact.created', status: 'delivered', attempts: 3 });
    expect(log.body.data[0].attempt_log.map((a: { status_code: number }) => a.status_code)).toEqual([500, 500, 200]);
    const times = log.body.data[0].attempt_log.map((a: { attempted_at: string }) => Date.parse(a.attempted_at));
    // Each retry waits at least its backoff delay (30 ms, then 60 ms) after the attempt before it.
    expect(times[1] - times[0]).toBeGreaterThanOrEqual(retryDelay(1, 30));
    expect(times[2] - times[1]).toBeGreaterThanOrEqual(retryDelay(2, 30));
    expect([retryDelay(1, 1000), retryDelay(2, 1000), retryDelay(3, 1000), retryDelay(30, 1000)]).toEqual([1000, 2000, 4000, 3_600_000]);
    await hook.close();
  });

  it('deliveries persist before sending and survive a restart', async () => {
    const hook = await receiver();
    const url = hook.url;
    await hook.close(); // nothing listens: every attempt fails for now
    await t.call('POST', '/v1/webhooks', { url, events: ['contact.created'] }, { token: app.admin_token });
    await operator(t, app).createContact({ role: 'user', user_id: 'u-restart' });
    const pending = await t.parley.services.db.selectFrom('webhook_deliveries').selectAll().execute();
    expect(pending).toHaveLength(1);
    expect(pending[0]!.status).not.toBe('delivered');
    const { createParley } = await import('../../server-stub/server.ts');
    await t.parley.close();
    // Same database, a new process-like life; the receiver is back on the same port.
    const port = Number(new URL(url).port);
    const again: Received[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => { again.push({ headers: req.headers, body, json: JSON.parse(body) }); res.writeHead(204).end(); });
    });
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    const second = await createParley({ ...t.databaseOptions, rateLimits: 'off', log: () => undefined, webhookRetryBaseMs: 10, workerPollMs: 20 });
    const end = Date.now() + 5000;
    while (again.length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    expect(again.map((r) => r.json.data.user_id)).toEqual(['u-restart']);
    await second.close();
    await new Promise<void>((r) => server.close(() => r()));
    t.parley = second; // closed already; afterEach closes again harmlessly
  });

  it('registration and the listing give the signing secret, and a receiver verifies a real delivery with it', async () => {
    const hook = await receiver();
    const created = await t.call('POST', '/v1/webhooks', { url: hook.url, events: ['contact.created'] }, { token: app.admin_token });
    expect(created.status).toBe(201);
    const secret: unknown = created.body.signing_secret;
    expect(typeof secret).toBe('string');
    expect((secret as string).length).toBeGreaterThanOrEqual(32);
    const listed = await t.call('GET', '/v1/webhooks', undefined, { token: app.admin_token });
    expect(listed.body.data).toEqual([{ id: created.body.id, url: hook.url, events: ['contact.created'], signing_secret: secret, created_at: created.body.created_at }]);
    await operator(t, app).createContact({ role: 'user', user_id: 'u-verify' });
    const [got] = await hook.waitFor((r) => r.length >= 1);
    // What an integrator writes: HMAC-SHA256 of the raw body with the secret the API gave, compared in constant time.
    const expected = Buffer.from(`sha256=${createHmac('sha256', secret as string).update(got!.body, 'utf8').digest('hex')}`);
    const header = Buffer.from(String(got!.headers['parley-signature']));
    expect(header.length === expected.length && timingSafeEqual(header, expected)).toBe(true);
    expect(got!.json.data.user_id).toBe('u-verify');
    // The secret is for the admin only: the delivery log does not repeat it.
    const log = await t.call('GET', `/v1/webhooks/${created.body.id}/deliveries`, undefined, { token: app.admin_token });
    expect(JSON.stringify(log.body)).not.toContain(secret as string);
    await hook.close();
  });

  it('a delivery in flight when the worker stops is not counted as an attempt, and is delivered after restart', async () => {
    // The first request is held open (no answer) until the worker stops; later ones get 200.
    const held: Received[] = [];
    const again: Received[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        const r = { headers: req.headers, body, json: JSON.parse(body) };
        if (held.length === 0) held.push(r);
        else { again.push(r); res.writeHead(200).end(); }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/hooks`;
    const created = await t.call('POST', '/v1/webhooks', { url, events: ['contact.created'] }, { token: app.admin_token });
    await operator(t, app).createContact({ role: 'user', user_id: 'u-shutdown' });
    const end = Date.now() + 5000;
    while (held.length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    expect(held).toHaveLength(1);

    await t.parley.webhooks.stop(); // the graceful shutdown path: aborts the held request
    const db = t.parley.services.db;
    const [row] = await db.selectFrom('webhook_deliveries').selectAll().execute();
    expect(row).toMatchObject({ id: held[0]!.json.id, status: 'pending', attempts: 0, locked_until: null });
    expect(await db.selectFrom('webhook_attempts').selectAll().execute()).toEqual([]);

    const { createParley } = await import('../../server-stub/server.ts');
    await t.parley.close();
    // Same database, a new process-like life (t.call and t.close still point at the first one).
    const second = await createParley({ ...t.databaseOptions, rateLimits: 'off', log: () => undefined, webhookRetryBaseMs: 10, workerPollMs: 20 });
    try {
      const until = Date.now() + 5000;
      while (again.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      expect(again.map((r) => r.json.id)).toEqual([held[0]!.json.id]);
      await second.webhooks.drain();
      const res = await second.app.fetch(new Request(`http://parley.test/v1/webhooks/${created.body.id}/deliveries`, { headers: { authorization: `Bearer ${app.admin_token}` } }));
      const log = (await res.json()) as { data: { status: string; attempts: number; attempt_log: { status_code: number }[] }[] };
      expect(log.data[0]).toMatchObject({ status: 'delivered', attempts: 1 });
      expect(log.data[0]!.attempt_log.map((a) => a.status_code)).toEqual([200]);
    } finally {
      await second.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('webhooks of another app are invisible (404) and bad URLs are refused (400)', async () => {
    const other = await t.createApp();
    const created = await t.call('POST', '/v1/webhooks', { url: 'https://example.com/h' }, { token: other.admin_token });
    expect((await t.call('GET', `/v1/webhooks/${created.body.id}/deliveries`, undefined, { token: app.admin_token })).status).toBe(404);
    expect((await t.call('DELETE', `/v1/webhooks/${created.body.id}`, undefined, { token: app.admin_token })).status).toBe(404);
    expect((await t.call('GET', '/v1/webhooks', undefined, { token: app.admin_token })).body.data).toEqual([]);
    expect((await t.call('POST', '/v1/webhooks', { url: 'not a url' }, { token: app.admin_token })).status).toBe(400);
    expect((await t.call('POST', '/v1/webhooks', { url: 'https://example.com/h', events: ['nope'] }, { token: app.admin_token })).status).toBe(400);
  });
});
