/**
 * R14 on every messenger endpoint that carries `user`: forged, truncated or misdirected hashes are
 * refused with 401 and write nothing; identity fields are never changed by an unsigned call.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { App } from '../../../server-stub/storage/apps.ts';
import { startTestServer, userHash, type TestServer } from '../../support/server-app.ts';
import { dbFingerprint } from '../../support/db-fingerprint.ts';
import { operator, widget } from '../http/helpers.ts';

let t: TestServer;
let secure: App;
let other: App;
beforeEach(async () => {
  t = await startTestServer();
  secure = await t.createApp({ require_verification: true });
  other = await t.createApp({ require_verification: true });
});
afterEach(async () => t.close());

type User = Record<string, unknown>;

/** Every messenger call that can carry `user`, for a visitor and (for a send) a conversation it owns. */
function callsCarrying(appId: string, visitorId: string, conversationId: string, user: User) {
  return [
    ['ping', '/v1/messenger/ping', { app_id: appId, visitor_id: visitorId, user }],
    ['conversation start', '/v1/messenger/conversations', { app_id: appId, visitor_id: visitorId, user, body: 'forged hello', client_id: randomUUID() }],
    ['message send', `/v1/messenger/conversations/${conversationId}/messages`, { app_id: appId, visitor_id: visitorId, user, body: 'forged message', client_id: randomUUID() }],
    ['event', '/v1/messenger/events', { app_id: appId, visitor_id: visitorId, user, name: 'forged_event' }],
  ] as const;
}

/** The forgeries of the issue, for a user with user_id `u1` and email `ann@example.com`. */
function forgeries(): [string, User][] {
  const right = userHash(secure.identity_secret, 'u1');
  const rightEmail = userHash(secure.identity_secret, 'ann@example.com');
  return [
    ['missing hash', { user_id: 'u1' }],
    ['empty hash', { user_id: 'u1', user_hash: '' }],
    ['wrong hash (random hex)', { user_id: 'u1', user_hash: 'ab'.repeat(32) }],
    ['truncated hash (63 digits)', { user_id: 'u1', user_hash: right.slice(0, 63) }],
    ['truncated hash (32 digits)', { user_id: 'u1', user_hash: right.slice(0, 32) }],
    ['hash with one digit more', { user_id: 'u1', user_hash: `${right}0` }],
    ['hash with a 0x prefix', { user_id: 'u1', user_hash: `0x${right}` }],
    ['hash with spaces around', { user_id: 'u1', user_hash: ` ${right} ` }],
    ['hash with a non-hex digit', { user_id: 'u1', user_hash: `${right.slice(0, 63)}g` }],
    ["other user's hash", { user_id: 'u1', user_hash: userHash(secure.identity_secret, 'u2') }],
    ["another app's secret", { user_id: 'u1', user_hash: userHash(other.identity_secret, 'u1') }],
    ['wrong secret', { user_id: 'u1', user_hash: userHash('not-the-secret', 'u1') }],
    ['email hash instead of the user_id hash', { user_id: 'u1', email: 'ann@example.com', user_hash: rightEmail }],
    ['email only, missing hash', { email: 'ann@example.com' }],
    ['email only, hash of the user_id', { email: 'ann@example.com', user_hash: right }],
    ['email only, hash of the email in other case', { email: 'Ann@Example.com', user_hash: rightEmail }],
    ['email only, hash of the trimmed email for an untrimmed one', { email: ' ann@example.com ', user_hash: rightEmail }],
    ['user_id with a space, hash of the bare user_id', { user_id: 'u1 ', user_hash: right }],
    ['a name change without a hash', { user_id: 'u1', name: 'Mallory' }],
  ];
}

describe('R14: forged identities are refused on every messenger call and write nothing', () => {
  it('R14: each forgery answers 401 on ping, conversation start, message send and events, for a new and a known cookie', async () => {
    // The real user u1, logged in on their own browser, with a conversation.
    const owner = widget(t, secure);
    expect((await owner.login({ user_id: 'u1', email: 'ann@example.com', name: 'Ann' })).status).toBe(200);
    const ownerConv = (await owner.start('my order')).body.conversation.id as string;
    // A lead's browser with a conversation of its own, and a browser never seen.
    const lead = widget(t, secure);
    const leadConv = (await lead.start('question')).body.conversation.id as string;
    const fresh = widget(t, secure);

    const before = await dbFingerprint(t.parley.services.db);
    let calls = 0;
    for (const [label, user] of forgeries()) {
      for (const [visitorId, conv] of [[owner.visitorId, ownerConv], [lead.visitorId, leadConv], [fresh.visitorId, leadConv]] as const) {
        for (const [name, path, body] of callsCarrying(secure.id, visitorId, conv, user)) {
          const res = await t.call('POST', path, body);
          expect(res.status, `${name}, ${label}`).toBe(401);
          expect(res.headers.get('content-type')).toContain('application/problem+json');
          expect(res.body.type).toMatch(/identity-verification-failed$/);
          calls++;
        }
      }
    }
    expect(calls).toBe(forgeries().length * 3 * 4);
    expect(await dbFingerprint(t.parley.services.db)).toBe(before);
  });

  it('R14: a hash of the wrong JSON type is a 400 and writes nothing', async () => {
    const w = widget(t, secure);
    const conv = (await w.start('hi')).body.conversation.id as string;
    const before = await dbFingerprint(t.parley.services.db);
    for (const hash of [123, true, ['ab'], { h: 'ab' }, 'f'.repeat(257)]) {
      for (const [name, path, body] of callsCarrying(secure.id, w.visitorId, conv, { user_id: 'u1', user_hash: hash })) {
        expect((await t.call('POST', path, body)).status, `${name} ${JSON.stringify(hash).slice(0, 20)}`).toBe(400);
      }
    }
    expect(await dbFingerprint(t.parley.services.db)).toBe(before);
  });

  it('R14: the right hash in upper-case hex is accepted on every call that carries a user', async () => {
    const upper = (v: string) => userHash(secure.identity_secret, v).toUpperCase();
    const w = widget(t, secure);
    const user = { user_id: 'u1', email: 'ann@example.com', user_hash: upper('u1') };
    const ping = await w.ping({ user });
    expect(ping.status).toBe(200);
    expect(ping.body.contact).toMatchObject({ role: 'user', user_id: 'u1' });
    const started = await w.start('hello', randomUUID(), { user });
    expect(started.status).toBe(201);
    expect(started.body.contact.id).toBe(ping.body.contact.id);
    const sent = await t.call('POST', `/v1/messenger/conversations/${started.body.conversation.id}/messages`, { app_id: secure.id, visitor_id: w.visitorId, user, body: 'more', client_id: randomUUID() });
    expect(sent.status).toBe(201);
    expect((await t.call('POST', '/v1/messenger/events', { app_id: secure.id, visitor_id: w.visitorId, user, name: 'paid' })).status).toBe(202);
    // Email-only identities sign the email exactly as sent.
    const byEmail = widget(t, secure);
    const emailPing = await byEmail.ping({ user: { email: 'Bo@Example.com', user_hash: upper('Bo@Example.com') } });
    expect(emailPing.status).toBe(200);
    expect(emailPing.body.contact.role).toBe('user');
  });
});

describe('identity fields are never changed by an unsigned call', () => {
  async function victim() {
    // The site's back end knows Ann's email (admin API); her browser then logs in with her signed user_id.
    await operator(t, secure).createContact({ role: 'user', user_id: 'u1', email: 'ann@example.com' });
    const w = widget(t, secure);
    const login = await w.login({ user_id: 'u1', name: 'Ann' });
    expect(login.status).toBe(200);
    return { w, id: login.body.contact.id as string };
  }
  const identityOf = async (app: App, id: string) => {
    const c = (await operator(t, app).contact(id)).body;
    return { role: c.role, user_id: c.user_id, email: c.email, name: c.name };
  };

  it("`lead: { email, name }` on a user's cookie changes neither the user's email nor name", async () => {
    const { w, id } = await victim();
    const res = await w.ping({ lead: { email: 'mallory@evil.example', name: 'Mallory' } });
    expect(res.status).toBe(200);
    expect(res.body.contact).toMatchObject({ id, email: 'ann@example.com', name: 'Ann' });
    expect(await identityOf(secure, id)).toEqual({ role: 'user', user_id: 'u1', email: 'ann@example.com', name: 'Ann' });
  });

  it('`user` with only a name (no identity, no hash) renames nobody', async () => {
    const { w, id } = await victim();
    for (const path of ['ping', 'events'] as const) {
      const body = { app_id: secure.id, visitor_id: w.visitorId, user: { name: 'Mallory' }, ...(path === 'events' ? { name: 'x' } : {}) };
      expect((await t.call('POST', `/v1/messenger/${path}`, body)).status).toBeLessThan(300);
    }
    expect(await identityOf(secure, id)).toEqual({ role: 'user', user_id: 'u1', email: 'ann@example.com', name: 'Ann' });
  });

  it('an unsigned user on a verification-required app renames no one, from the user\'s own cookie or another', async () => {
    const { w, id } = await victim();
    const stranger = widget(t, secure);
    const conv = (await w.start('mine')).body.conversation.id as string;
    const before = await dbFingerprint(t.parley.services.db);
    for (const visitorId of [w.visitorId, stranger.visitorId]) {
      for (const user of [{ user_id: 'u1', name: 'Mallory' }, { user_id: 'u1', email: 'mallory@evil.example' }, { email: 'ann@example.com', name: 'Mallory' }]) {
        for (const [name, path, body] of callsCarrying(secure.id, visitorId, conv, user)) {
          expect((await t.call('POST', path, body)).status, name).toBe(401);
        }
      }
    }
    expect(await dbFingerprint(t.parley.services.db)).toBe(before);
    expect(await identityOf(secure, id)).toEqual({ role: 'user', user_id: 'u1', email: 'ann@example.com', name: 'Ann' });
  });

  it("a stranger who types a user's email in the lead prompt stays a lead and sees none of the user's conversations", async () => {
    const { w, id } = await victim();
    await w.start('my private order');
    const stranger = widget(t, secure);
    const res = await stranger.ping({ lead: { email: 'ann@example.com', name: 'Mallory' } });
    expect(res.status).toBe(200);
    expect(res.body.contact).toMatchObject({ role: 'lead', user_id: null });
    expect(res.body.contact.id).not.toBe(id);
    expect((await stranger.conversations()).body.data).toEqual([]);
    expect(await identityOf(secure, id)).toEqual({ role: 'user', user_id: 'u1', email: 'ann@example.com', name: 'Ann' });
  });

  it('a signed identity cannot be replayed on another app (its hash is keyed by this app\'s secret)', async () => {
    const hash = userHash(secure.identity_secret, 'u1');
    const before = await dbFingerprint(t.parley.services.db);
    const res = await t.call('POST', '/v1/messenger/ping', { app_id: other.id, visitor_id: randomUUID(), user: { user_id: 'u1', user_hash: hash } });
    expect(res.status).toBe(401);
    expect(await dbFingerprint(t.parley.services.db)).toBe(before);
  });
});
