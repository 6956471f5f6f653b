import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { App } from '../../../server-stub/storage/apps.ts';
import { BASE, startTestServer, userHash, type TestServer } from '../../support/server-app.ts';
import { dbFingerprint } from '../../support/db-fingerprint.ts';
import { operator, widget } from './helpers.ts';

let t: TestServer;
let app: App;
beforeEach(async () => {
  t = await startTestServer();
  app = await t.createApp();
});
afterEach(async () => t.close());

const raw = (path: string, init: RequestInit) => t.fetch(new Request(`${BASE}${path}`, init));

describe('input errors are problem+json and write nothing', () => {
  it('bodies over 64 KiB get 413', async () => {
    const before = await dbFingerprint(t.parley.services.db);
    const res = await raw('/v1/messenger/ping', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ app_id: app.id, visitor_id: randomUUID(), attributes: { x: 'a'.repeat(70_000) } }) });
    expect(res.status).toBe(413);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(await dbFingerprint(t.parley.services.db)).toBe(before);
  });

  it('invalid UTF-8 and invalid JSON get 400', async () => {
    const bad = new Uint8Array([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]);
    const r1 = await raw('/v1/messenger/ping', { method: 'POST', headers: { 'content-type': 'application/json' }, body: bad });
    expect(r1.status).toBe(400);
    expect((await r1.json()).type).toMatch(/invalid-utf8$/);
    const r2 = await raw('/v1/messenger/ping', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"app_id":' });
    expect(r2.status).toBe(400);
    const body = await r2.json();
    expect(Object.keys(body).sort()).toEqual(['detail', 'status', 'title', 'type']);
  });

  it.each(['', '   ', 'null', 'undefined', 'anonymous', 'guest', '0', 'NaN', 'None', '[object Object]'])('junk user_id %j is refused with 400 and nothing written', async (junk) => {
    const before = await dbFingerprint(t.parley.services.db);
    const res = await widget(t, app).ping({ user: { user_id: junk } });
    expect(res.status).toBe(400);
    expect(await dbFingerprint(t.parley.services.db)).toBe(before);
  });

  it('a malformed email is refused with 400', async () => {
    expect((await widget(t, app).ping({ user: { email: 'nope' } })).status).toBe(400);
    expect((await widget(t, app).ping({ lead: { email: 'nope@' } })).status).toBe(400);
    expect((await operator(t, app).createContact({ role: 'user', email: 'x@' })).status).toBe(400);
  });

  it('an unknown app is 404', async () => {
    expect((await t.call('POST', '/v1/messenger/ping', { app_id: 'nope', visitor_id: randomUUID() })).status).toBe(404);
  });
});

describe('R14 identity verification on every messenger call', () => {
  let secure: App;
  beforeEach(async () => {
    secure = await t.createApp({ require_verification: true });
  });
  const calls = (appId: string, visitorId: string, user: Record<string, unknown>) => [
    ['ping', '/v1/messenger/ping', { app_id: appId, visitor_id: visitorId, user }],
    ['conversation start', '/v1/messenger/conversations', { app_id: appId, visitor_id: visitorId, user, body: 'hi', client_id: randomUUID() }],
    ['event', '/v1/messenger/events', { app_id: appId, visitor_id: visitorId, user, name: 'x' }],
  ] as const;

  it('R14: unsigned, wrongly signed or truncated identities are refused with 401 and nothing is written', async () => {
    const good = userHash(secure.identity_secret, 'u1');
    const forged = [
      { user_id: 'u1' },
      { user_id: 'u1', user_hash: '' },
      { user_id: 'u1', user_hash: 'deadbeef' },
      { user_id: 'u1', user_hash: good.slice(0, 60) },
      { user_id: 'u1', user_hash: userHash(secure.identity_secret, 'u2') },
      { user_id: 'u1', user_hash: userHash('wrong-secret', 'u1') },
      { user_id: 'u1', email: 'a@b.co', user_hash: userHash(secure.identity_secret, 'a@b.co') },
      { email: 'a@b.co', user_hash: userHash(secure.identity_secret, 'u1') },
    ];
    const visitorId = randomUUID();
    await t.call('POST', '/v1/messenger/ping', { app_id: secure.id, visitor_id: visitorId });
    const before = await dbFingerprint(t.parley.services.db);
    for (const user of forged) {
      for (const [name, path, body] of calls(secure.id, visitorId, user)) {
        const res = await t.call('POST', path, body);
        expect(res.status, `${name} with ${JSON.stringify(user)}`).toBe(401);
      }
    }
    expect(await dbFingerprint(t.parley.services.db)).toBe(before);
  });

  it('R14: the right hash, in upper-case hex too, is accepted', async () => {
    const hash = userHash(secure.identity_secret, 'u1').toUpperCase();
    const res = await t.call('POST', '/v1/messenger/ping', { app_id: secure.id, visitor_id: randomUUID(), user: { user_id: 'u1', user_hash: hash } });
    expect(res.status).toBe(200);
    expect(res.body.contact.user_id).toBe('u1');
  });

  it('R14: a message send carrying a forged identity is refused too', async () => {
    const w = widget(t, secure);
    const started = await w.start('hi');
    const res = await t.call('POST', `/v1/messenger/conversations/${started.body.conversation.id}/messages`, { app_id: secure.id, visitor_id: w.visitorId, body: 'x', client_id: randomUUID(), user: { user_id: 'u1', user_hash: 'ab'.repeat(32) } });
    expect(res.status).toBe(401);
  });
});

describe('origins and CORS', () => {
  it('a messenger call from an origin the app does not allow is refused with 403', async () => {
    const strict = await t.createApp({ allowed_origins: ['https://shop.example'] });
    const ok = await t.call('POST', '/v1/messenger/ping', { app_id: strict.id, visitor_id: randomUUID() }, { headers: { origin: 'https://shop.example' } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe('https://shop.example');
    const before = await dbFingerprint(t.parley.services.db);
    const bad = await t.call('POST', '/v1/messenger/ping', { app_id: strict.id, visitor_id: randomUUID() }, { headers: { origin: 'https://evil.example' } });
    expect(bad.status).toBe(403);
    expect(await dbFingerprint(t.parley.services.db)).toBe(before);
  });

  it('messenger preflights are answered; admin calls from another origin are refused', async () => {
    const pre = await raw('/v1/messenger/ping', { method: 'OPTIONS', headers: { origin: 'https://shop.example', 'access-control-request-method': 'POST' } });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-methods')).toContain('POST');
    const adminCall = await t.call('GET', '/v1/contacts', undefined, { token: app.admin_token, headers: { origin: 'https://evil.example' } });
    expect(adminCall.status).toBe(403);
    expect(adminCall.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('admin API', () => {
  it('needs a valid bearer token (401)', async () => {
    expect((await t.call('GET', '/v1/contacts')).status).toBe(401);
    expect((await t.call('GET', '/v1/contacts', undefined, { token: 'pat_wrong' })).status).toBe(401);
  });

  it('sees nothing of another app: 404, never 403', async () => {
    const other = await t.createApp();
    const w = widget(t, other);
    const started = await w.start('secret');
    const mine = operator(t, app);
    expect((await mine.contact(started.body.contact.id)).status).toBe(404);
    expect((await mine.conversations(started.body.contact.id)).status).toBe(404);
    expect((await mine.reply(started.body.conversation.id, 'hi')).status).toBe(404);
    expect((await t.call('GET', `/v1/conversations/${started.body.conversation.id}/messages`, undefined, { token: app.admin_token })).status).toBe(404);
    expect((await mine.contacts()).body.data).toEqual([]);
    const u = await mine.createContact({ role: 'user', user_id: 'u1' });
    expect((await mine.merge(started.body.contact.id, u.body.id)).status).toBe(404);
  });

  it('lists paginate with limit and cursor; next_cursor is null on the last page', async () => {
    const op = operator(t, app);
    for (let i = 0; i < 5; i++) await op.createContact({ role: 'user', user_id: `u${i}` });
    const p1 = await op.contacts('?limit=2');
    expect(p1.body.data).toHaveLength(2);
    const p2 = await op.contacts(`?limit=2&cursor=${p1.body.next_cursor}`);
    const p3 = await op.contacts(`?limit=2&cursor=${p2.body.next_cursor}`);
    expect(p3.body.data).toHaveLength(1);
    expect(p3.body.next_cursor).toBeNull();
    const ids = [...p1.body.data, ...p2.body.data, ...p3.body.data].map((c: { user_id: string }) => c.user_id);
    expect(ids).toEqual(['u0', 'u1', 'u2', 'u3', 'u4']);
    expect((await op.contacts('?limit=1001')).status).toBe(400);
  });

  it('contacts list newest first with order=newest, paging backwards to the oldest', async () => {
    const op = operator(t, app);
    for (let i = 0; i < 5; i++) await op.createContact({ role: 'user', user_id: `u${i}` });
    const ids: string[] = [];
    let cursor: string | null = null;
    do {
      const p = await op.contacts(`?order=newest&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      ids.push(...p.body.data.map((c: { user_id: string }) => c.user_id));
      cursor = p.body.next_cursor;
    } while (cursor);
    expect(ids).toEqual(['u4', 'u3', 'u2', 'u1', 'u0']);
    expect((await op.contacts('?order=sideways')).status).toBe(400);
  });

  it('conversations page with limit and cursor too', async () => {
    const w = widget(t, app);
    const started = [];
    for (let i = 0; i < 5; i++) started.push((await w.start(`question ${i}`)).body);
    const contactId = started[0].contact.id;
    const op = operator(t, app);
    const p1 = await t.call('GET', `/v1/conversations?contact_id=${contactId}&limit=2`, undefined, { token: app.admin_token });
    const p2 = await t.call('GET', `/v1/conversations?contact_id=${contactId}&limit=2&cursor=${p1.body.next_cursor}`, undefined, { token: app.admin_token });
    const p3 = await t.call('GET', `/v1/conversations?contact_id=${contactId}&limit=2&cursor=${p2.body.next_cursor}`, undefined, { token: app.admin_token });
    const ids = [...p1.body.data, ...p2.body.data, ...p3.body.data].map((c: { id: string }) => c.id);
    expect(ids).toEqual(started.map((s) => s.conversation.id).reverse());
    expect(p3.body.next_cursor).toBeNull();
    expect((await op.conversations(contactId)).body.data).toHaveLength(5);
    expect((await t.call('GET', '/v1/conversations?limit=5000', undefined, { token: app.admin_token })).status).toBe(400);
  });

  it('a conversation\'s messages page with limit and cursor, oldest first, to the last one', async () => {
    const w = widget(t, app);
    const conv = (await w.start('message 0')).body.conversation.id as string;
    for (let i = 1; i < 5; i++) await w.send(conv, `message ${i}`);
    const page = (cursor?: string) => t.call('GET', `/v1/conversations/${conv}/messages?limit=2${cursor ? `&cursor=${cursor}` : ''}`, undefined, { token: app.admin_token });
    const bodies: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const p = await page(cursor);
      expect(p.status).toBe(200);
      bodies.push(...p.body.data.map((m: { body: string }) => m.body));
      cursor = p.body.next_cursor ?? undefined;
      pages++;
    } while (cursor);
    expect(bodies).toEqual(['message 0', 'message 1', 'message 2', 'message 3', 'message 4']);
    expect(pages).toBe(3);
    expect((await t.call('GET', `/v1/conversations/${conv}/messages?limit=5000`, undefined, { token: app.admin_token })).status).toBe(400);
  });

  it('creating a user that exists is a 409 conflict', async () => {
    const op = operator(t, app);
    await op.createContact({ role: 'user', user_id: 'u1' });
    expect((await op.createContact({ role: 'user', user_id: 'u1' })).status).toBe(409);
    await op.createContact({ role: 'user', email: 'solo@example.com' });
    expect((await op.createContact({ role: 'user', email: 'SOLO@example.com' })).status).toBe(409);
  });

  it('reads need application/json bodies on JSON calls', async () => {
    const res = await t.call('POST', '/v1/contacts', 'role=user', { token: app.admin_token, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(res.status).toBe(400);
  });

  it('a call whose fields are all optional may be sent with no body at all; one with required fields gets 400 for them', async () => {
    const bare = (path: string) => t.fetch(new Request(`${BASE}${path}`, { method: 'POST', headers: { authorization: `Bearer ${app.admin_token}` } }));
    const bulk = await bare('/v1/merges/bulk');
    expect(bulk.status).toBe(200);
    expect(await bulk.json()).toMatchObject({ merged: 0, ambiguous: 0, skipped: 0 });
    const create = await bare('/v1/contacts');
    expect(create.status).toBe(400);
    expect(create.headers.get('content-type')).toContain('application/problem+json');
    expect((await create.json()).type).not.toMatch(/unsupported-content-type$/);
  });
});

describe('conversations and messages', () => {
  it('the same client_id twice starts one conversation and stores one message', async () => {
    const w = widget(t, app);
    const cid = randomUUID();
    const a = await w.start('once', cid);
    const b = await w.start('once', cid);
    expect(b.status).toBe(201);
    expect(b.body.conversation.id).toBe(a.body.conversation.id);
    expect(b.body.message.id).toBe(a.body.message.id);
    const mid = randomUUID();
    const m1 = await w.send(a.body.conversation.id, 'again', mid);
    const m2 = await w.send(a.body.conversation.id, 'again', mid);
    expect(m2.body).toEqual(m1.body);
    expect((await w.messages(a.body.conversation.id)).body.data).toHaveLength(2);
  });

  it('a visitor cannot read or write another visitor\'s conversation (404)', async () => {
    const a = widget(t, app);
    const started = await a.start('mine');
    const b = widget(t, app);
    await b.ping();
    expect((await b.messages(started.body.conversation.id)).status).toBe(404);
    expect((await b.send(started.body.conversation.id, 'intrusion')).status).toBe(404);
    // Reusing someone else's client_id does not reveal their conversation.
    const stolen = await b.start('x', started.body.message.client_id);
    expect(stolen.status).toBe(409);
  });

  it('agent replies count as unread until the conversation is read; after= returns only newer messages', async () => {
    const w = widget(t, app);
    const started = await w.start('question');
    const conv = started.body.conversation.id;
    const reply = await operator(t, app).reply(conv, 'answer');
    expect(reply.status).toBe(201);
    expect(reply.body.author.type).toBe('agent');
    expect((await w.ping()).body.unread_count).toBe(1);
    expect((await w.conversations()).body.data[0]).toMatchObject({ id: conv, unread_count: 1, last_message: { body: 'answer' } });
    const after = await w.messages(conv, started.body.message.id);
    expect(after.body.data.map((m: { body: string }) => m.body)).toEqual(['answer']);
    const read = await t.call('POST', `/v1/messenger/conversations/${conv}/read`, { app_id: app.id, visitor_id: w.visitorId });
    expect(read.status).toBe(204);
    expect((await w.ping()).body.unread_count).toBe(0);
  });

  it('events are accepted with 202 and summarised', async () => {
    const w = widget(t, app);
    expect((await w.event('a')).status).toBe(202);
    await w.event('a', '2020-01-01T00:00:00Z');
    const contact = (await w.ping()).body.contact;
    const detail = await t.call('GET', `/v1/contacts/${contact.id}`, undefined, { token: app.admin_token });
    expect(detail.body.events).toEqual([{ name: 'a', count: 2, first_at: '2020-01-01T00:00:00.000Z', last_at: expect.any(String) }]);
    expect(detail.body.events[0].last_at > '2026').toBe(true);
  });
});
