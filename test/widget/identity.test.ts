import { waitFor } from '@testing-library/preact';
import Cookies from 'js-cookie';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { cookieName, createIdentity } from '../../widget/identity.ts';
import { uuid } from '../../widget/ids.ts';
import { memoryKV, type KV } from '../../widget/storage.ts';
import { http, HttpResponse } from 'msw';
import { BASE } from './handlers.ts';
import { cookieValue, harness, server, settings } from './setup.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('visitor id', () => {
  afterEach(() => vi.restoreAllMocks());

  it('is a UUID v4, also from getRandomValues when randomUUID is missing', () => {
    expect(uuid()).toMatch(UUID);
    const fallback = { getRandomValues: (a: Uint8Array<ArrayBuffer>) => crypto.getRandomValues(a) } as unknown as Crypto;
    const ids = new Set(Array.from({ length: 50 }, () => uuid(fallback)));
    expect(ids.size).toBe(50);
    for (const id of ids) expect(id).toMatch(UUID);
  });

  it('boot creates the cookie (name with app id, path /, SameSite=Lax, ~9 months) and pings with it', async () => {
    const set = vi.spyOn(Cookies, 'set');
    const h = harness();
    await h.w.boot(settings());
    const id = h.w.getVisitorId();
    expect(id).toMatch(UUID);
    expect(cookieValue('parley_vid_app_test')).toBe(id);
    const [name, value, attrs] = set.mock.calls.at(-1)!;
    expect(name).toBe(cookieName('app_test'));
    expect(value).toBe(id);
    expect(attrs).toMatchObject({ path: '/', sameSite: 'Lax', secure: false, expires: 270 });
    expect(h.fake.callsTo('POST', '/ping')[0]!.body).toMatchObject({ app_id: 'app_test', visitor_id: id });
  });

  it('reuses the cookie on the next page load and refreshes it', async () => {
    const first = harness();
    await first.w.boot(settings());
    const id = first.w.getVisitorId();
    const set = vi.spyOn(Cookies, 'set');
    const second = harness({ fake: first.fake });
    await second.w.boot(settings());
    expect(second.w.getVisitorId()).toBe(id);
    expect(set).toHaveBeenCalledWith('parley_vid_app_test', id, expect.objectContaining({ expires: 270 }));
  });

  it('uses cookie_domain and Secure on https', () => {
    const set = vi.spyOn(Cookies, 'set');
    createIdentity({ appId: 'a', domain: '.example.com', secure: true, newId: () => 'x'.repeat(20) }).get();
    expect(set.mock.calls[0]![2]).toMatchObject({ domain: '.example.com', secure: true, path: '/' });
  });

  it('works for the page lifetime when cookies are blocked', () => {
    vi.spyOn(Cookies, 'set').mockImplementation(() => undefined);
    vi.spyOn(Cookies, 'get').mockImplementation((() => undefined) as never);
    const idn = createIdentity({ appId: 'blocked', secure: false, newId: uuid });
    const id = idn.get();
    expect(idn.persistent()).toBe(false);
    expect(idn.get()).toBe(id);
    expect(idn.touch()).toBe(id);
  });

  it('ignores a tampered cookie value', () => {
    document.cookie = 'parley_vid_app_x=<script>; path=/';
    const idn = createIdentity({ appId: 'app_x', secure: false, newId: uuid });
    expect(idn.get()).toMatch(UUID);
  });

  it('R8: a 409 visitor-reset-required replaces the visitor id and pings again', async () => {
    const h = harness();
    await h.w.boot(settings({ user_id: 'u1', email: 'one@example.com', user_hash: 'h1' }));
    const old = h.w.getVisitorId();
    expect(h.fake.visitors.has(old!)).toBe(true);
    const r = await h.w.update({ user_id: 'u2', email: 'two@example.com', user_hash: 'h2' });
    expect(r).toEqual({ ok: true });
    const pings = h.fake.callsTo('POST', '/ping');
    const [rejected, retried] = pings.slice(-2);
    expect(rejected!.body.visitor_id).toBe(old);
    expect(retried!.body.visitor_id).not.toBe(old);
    expect(retried!.body.user).toEqual({ user_id: 'u2', email: 'two@example.com', user_hash: 'h2' });
    expect(h.w.getVisitorId()).toBe(retried!.body.visitor_id);
    expect(cookieValue('parley_vid_app_test')).toBe(retried!.body.visitor_id);
    // The stream now follows the new visitor.
    expect(h.streams.current().url).toContain(`visitor_id=${retried!.body.visitor_id}`);
  });
});

describe('login ping', () => {
  it('R2: carries the visitor id, the user, the hash and custom attributes', async () => {
    const h = harness();
    await h.w.boot(settings({ user_id: 'u42', email: 'ada@example.com', name: 'Ada', user_hash: 'abc123', plan: 'pro', color: '#123456' }));
    const body = h.fake.callsTo('POST', '/ping')[0]!.body;
    expect(body).toEqual({
      app_id: 'app_test',
      visitor_id: h.w.getVisitorId(),
      user: { user_id: 'u42', email: 'ada@example.com', name: 'Ada', user_hash: 'abc123' },
      attributes: { plan: 'pro' },
    });
  });

  it('sends only scalar custom attributes and warns about the others', async () => {
    const h = harness();
    await h.w.boot(settings({ plan: 'pro', seats: 3, trial: false, nested: { a: 1 }, list: [1] }));
    expect(h.fake.callsTo('POST', '/ping')[0]!.body.attributes).toEqual({ plan: 'pro', seats: 3, trial: false });
    expect(h.errors).toEqual([
      expect.objectContaining({ title: 'Attributes not sent', detail: expect.stringMatching(/^"nested", "list": /) }),
    ]);
  });

  it('drops attributes the server would refuse (string over 2,000, key over 100, more than 100), so pings keep working; one console warning', async () => {
    const many = Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`a${String(i).padStart(3, '0')}`, i]));
    const h = harness({ deps: { throttleMs: 0 } });
    const r = await h.w.boot(
      settings({ user_id: 'u1', user_hash: 'h', plan: 'x'.repeat(2000), bio: 'y'.repeat(2001), ['k'.repeat(101)]: 1, ['k'.repeat(100)]: 2, ...many }),
    );
    expect(r).toEqual({ ok: true });
    const sent = h.fake.callsTo('POST', '/ping')[0]!.body;
    expect(sent.user).toEqual({ user_id: 'u1', user_hash: 'h' });
    const keys = Object.keys(sent.attributes);
    expect(keys).toHaveLength(100);
    expect(keys.slice(0, 2)).toEqual(['plan', 'k'.repeat(100)]);
    expect(keys).not.toContain('bio');
    expect(keys).not.toContain('k'.repeat(101));
    expect(keys).not.toContain('a098'); // the 101st and later valid ones
    expect(h.errors).toEqual([
      expect.objectContaining({ title: 'Attributes not sent', detail: expect.stringMatching(/^"bio", "k{101}", "a098", "a099", "a100": /) }),
    ]);
    history.pushState({}, '', '/next'); // another ping: no second warning
    await waitFor(() => expect(h.fake.callsTo('POST', '/ping')).toHaveLength(2));
    expect(h.errors).toHaveLength(1);
  });

  it('an anonymous ping carries no user', async () => {
    const h = harness();
    await h.w.boot(settings());
    expect(h.fake.callsTo('POST', '/ping')[0]!.body.user).toBeUndefined();
  });

  it('update with an identity pings at once with the same visitor id, and the conversations follow the user', async () => {
    const h = harness();
    await h.w.boot(settings());
    const vid = h.w.getVisitorId();
    h.w.show();
    const ui = h.ui();
    const box = await waitFor(() => ui.getByRole('textbox', { name: 'Message' }));
    (box as HTMLTextAreaElement).value = 'hello';
    box.dispatchEvent(new Event('input', { bubbles: true }));
    box.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true }));
    await waitFor(() => expect(h.fake.callsTo('POST', '/conversations')).toHaveLength(1));
    const listsBefore = h.fake.callsTo('GET', '/conversations').length;
    await h.w.update({ user_id: 'u7', email: 'seven@example.com', user_hash: 'h7' });
    const login = h.fake.callsTo('POST', '/ping').at(-1)!.body;
    expect(login.visitor_id).toBe(vid);
    expect(login.user.user_id).toBe('u7');
    await waitFor(() => expect(h.fake.callsTo('GET', '/conversations').length).toBeGreaterThan(listsBefore));
  });

  it('R5: follows a pending merge until done, then re-fetches conversations', async () => {
    const h = harness();
    h.fake.opts.mergePending = 1;
    await h.w.boot(settings({ user_id: 'u9', user_hash: 'h9' }));
    await waitFor(() => expect(h.fake.callsTo('POST', '/ping').length).toBeGreaterThanOrEqual(2), { timeout: 3000 });
    await waitFor(() => expect(h.fake.callsTo('GET', '/conversations').length).toBeGreaterThanOrEqual(1));
  });

  it('SPA URL changes ping again, throttled', async () => {
    const h = harness();
    await h.w.boot(settings());
    history.pushState({}, '', '/a');
    history.pushState({}, '', '/b');
    history.replaceState({}, '', '/c');
    await waitFor(() => expect(h.fake.callsTo('POST', '/ping')).toHaveLength(2));
    await new Promise((r) => setTimeout(r, 120));
    expect(h.fake.callsTo('POST', '/ping')).toHaveLength(2);
  });
});

describe('shutdown', () => {
  afterEach(() => {
    vi.unstubAllGlobals();
    vi.restoreAllMocks();
  });

  it('R15: shutdown deletes the cookie and local data, closes the stream, logs out; the next boot is a new visitor', async () => {
    const kv = memoryKV();
    const h = harness({ kv });
    await h.w.boot(settings({ user_id: 'u1', user_hash: 'h' }));
    const old = h.w.getVisitorId()!;
    // Leave something in the outbox: the network is down when the visitor types.
    h.fake.fail('POST /conversations', 'network', Infinity);
    h.w.showNewMessage('unsent words');
    const ui = h.ui();
    (await ui.findByRole('button', { name: 'Send' })).click();
    await ui.findByText(/Not sent/);
    expect(await kv.get('outbox:app_test')).toHaveLength(1);
    const stream = h.streams.current();

    expect(await h.w.shutdown()).toEqual({ ok: true });
    expect(cookieValue('parley_vid_app_test')).toBeUndefined();
    expect(await kv.get('outbox:app_test')).toBeUndefined();
    expect(stream.closed).toBe(true);
    expect(document.querySelector('[data-parley]')).toBeNull();
    expect(h.fake.callsTo('POST', '/logout')[0]!.body).toEqual({ app_id: 'app_test', visitor_id: old });
    expect(h.w.getVisitorId()).toBeNull();

    await h.w.boot(settings());
    const fresh = h.w.getVisitorId();
    expect(fresh).not.toBe(old);
    expect(h.fake.callsTo('POST', '/ping').at(-1)!.body).toMatchObject({ visitor_id: fresh });
    expect(h.fake.callsTo('POST', '/ping').at(-1)!.body.user).toBeUndefined();
    expect(cookieValue('parley_vid_app_test')).toBe(fresh);
  });

  it('R15: a ping answer (here a R8 reset) that arrives after shutdown changes nothing and sets no new cookie', async () => {
    const h = harness();
    let answer!: () => void;
    const gate = new Promise<void>((r) => (answer = r));
    server.use(
      http.post(`${BASE}/v1/messenger/ping`, async () => {
        await gate;
        return HttpResponse.json(
          { type: 'https://parley.dev/problems/visitor-reset-required', title: 'reset', status: 409, detail: '' },
          { status: 409 },
        );
      }),
    );
    const booting = h.w.boot(settings({ user_id: 'u1', user_hash: 'h' }));
    const callsBefore = h.fake.calls.length;
    await h.w.shutdown();
    answer();
    await booting;
    await new Promise((r) => setTimeout(r, 400)); // longer than the merge follow-up delay
    expect(cookieValue('parley_vid_app_test')).toBeUndefined();
    expect(h.fake.calls.slice(callsBefore).map((c) => c.path)).toEqual(['/v1/messenger/logout']);
  });

  it('R15: shutdown then boot in the same tick (as a logout button does) starts clean', async () => {
    const h = harness();
    await h.w.boot(settings({ user_id: 'u1', user_hash: 'h', color: 'red' }));
    const old = h.w.getVisitorId();
    const done = h.w.shutdown();
    const booted = h.w.boot(settings());
    await Promise.all([done, booted]);
    expect(h.w.getVisitorId()).not.toBe(old);
    expect(document.querySelectorAll('[data-parley]')).toHaveLength(1);
  });

  it('R15: an unsent message left by an earlier page is neither sent nor kept when shutdown follows boot at once (storage answers late)', async () => {
    const mem = memoryKV();
    const later = <T>(p: () => Promise<T>) => new Promise<T>((ok) => setTimeout(() => void p().then(ok), 5));
    const kv: KV = {
      get: (k) => later(() => mem.get(k)),
      set: (k, v) => later(() => mem.set(k, v)),
      del: (k) => later(() => mem.del(k)),
    };
    await mem.set('outbox:app_test', [
      { client_id: 'c-alice-1', visitor_id: 'aliceVisitorId000001', body: 'alice: my address is ...', created_at: '', conversation_id: null, status: 'failed' },
    ]);
    const h = harness({ kv });
    const booting = h.w.boot(settings());
    await h.w.shutdown();
    await booting;
    await new Promise((r) => setTimeout(r, 100));
    expect(await mem.get('outbox:app_test')).toBeUndefined();
    expect(h.fake.callsTo('POST', '/conversations')).toHaveLength(0);
  });

  it('R15: a tab left open does not bring back a cookie deleted elsewhere; it shuts down, and the next boot is a new visitor', async () => {
    vi.stubGlobal('BroadcastChannel', undefined); // only the cookie tells: e.g. a logout on another subdomain
    const h = harness({ deps: { throttleMs: 0 } });
    await h.w.boot(settings({ user_id: 'u1', user_hash: 'h' }));
    const old = h.w.getVisitorId()!;
    const stream = h.streams.current();
    const pings = h.fake.callsTo('POST', '/ping').length;
    Cookies.remove('parley_vid_app_test', { path: '/' });
    history.pushState({}, '', '/cart'); // the SPA navigates: a ping
    await waitFor(() => expect(h.w.getVisitorId()).toBeNull());
    expect(cookieValue('parley_vid_app_test')).toBeUndefined();
    expect(h.fake.callsTo('POST', '/ping')).toHaveLength(pings); // no ping with the old id
    expect(stream.closed).toBe(true);
    history.pushState({}, '', '/checkout');
    await new Promise((r) => setTimeout(r, 50));
    expect(cookieValue('parley_vid_app_test')).toBeUndefined();
    await h.w.boot(settings());
    expect(h.w.getVisitorId()).not.toBe(old);
  });

  it('R15: shutdown in one tab shuts down the other tabs of the origin, which do not log out again', async () => {
    const one = harness();
    const two = harness({ fake: one.fake, deps: { throttleMs: 0 } });
    await one.w.boot(settings({ user_id: 'u1', user_hash: 'h' }));
    await two.w.boot(settings({ user_id: 'u1', user_hash: 'h' }));
    const old = one.w.getVisitorId();
    expect(two.w.getVisitorId()).toBe(old);
    const stream = two.streams.current();
    await one.w.shutdown();
    await waitFor(() => expect(two.w.getVisitorId()).toBeNull());
    expect(stream.closed).toBe(true);
    history.pushState({}, '', '/cart');
    await new Promise((r) => setTimeout(r, 50));
    expect(cookieValue('parley_vid_app_test')).toBeUndefined();
    expect(one.fake.callsTo('POST', '/logout')).toHaveLength(1);
  });

  it('R15: the other tab going down keeps the cookie of a visitor booted right after the logout', async () => {
    const one = harness({ deps: { throttleMs: 0 } });
    const two = harness({ fake: one.fake });
    await one.w.boot(settings({ user_id: 'u1', user_hash: 'h' }));
    await two.w.boot(settings({ user_id: 'u1', user_hash: 'h' }));
    const old = one.w.getVisitorId();
    void one.w.shutdown();
    await one.w.boot(settings()); // the logout page boots anonymously at once
    const fresh = one.w.getVisitorId()!;
    await waitFor(() => expect(two.w.getVisitorId()).toBeNull());
    history.pushState({}, '', '/cart');
    await new Promise((r) => setTimeout(r, 50));
    expect(fresh).not.toBe(old);
    expect(cookieValue('parley_vid_app_test')).toBe(fresh);
    expect(one.w.getVisitorId()).toBe(fresh);
  });

  it('R15: without BroadcastChannel the other tabs hear of the logout through a localStorage storage event', async () => {
    vi.stubGlobal('BroadcastChannel', undefined);
    const setItem = vi.spyOn(window.localStorage, 'setItem');
    const one = harness();
    await one.w.boot(settings());
    await one.w.shutdown();
    expect(setItem).toHaveBeenCalledWith('parley_app_test', expect.any(String));
    expect(localStorage.getItem('parley_app_test')).toBeNull(); // nothing left behind
    // A storage event only reaches the other documents: play the other tab's part here.
    const two = harness();
    await two.w.boot(settings());
    window.dispatchEvent(new StorageEvent('storage', { key: 'parley_app_test', newValue: '0.5' }));
    expect(two.w.getVisitorId()).toBeNull();
  });

  it('R15: a tab with a user that finds the cookie replaced (logout then a new visitor on another subdomain) never sends the user with the new id; it logs out here and keeps the new cookie', async () => {
    vi.stubGlobal('BroadcastChannel', undefined); // tab A is on app.example.com, this tab B on www.example.com
    const kv = memoryKV();
    const b = harness({ kv, deps: { throttleMs: 0, backoffMs: 60_000 } });
    await b.w.boot(settings({ user_id: 'u1', user_hash: 'h' }));
    const old = b.w.getVisitorId()!;
    const u1 = b.fake.visitors.get(old)!;
    // Something of u1's waits in B's own storage (another origin: tab A could not wipe it).
    b.fake.fail('POST /conversations', 'network', Infinity);
    b.w.showNewMessage('u1: my order number is 4711');
    (await b.ui().findByRole('button', { name: 'Send' })).click();
    await b.ui().findByText(/Not sent/);
    expect(await kv.get('outbox:app_test')).toHaveLength(1);
    // A message of the new visitor, waiting in the same storage (a tab here that switched users).
    const theirs = { client_id: uuid(), visitor_id: uuid(), body: 'theirs', conversation_id: null, status: 'sending', created_at: new Date().toISOString() };
    await kv.set('outbox:app_test', [...((await kv.get<unknown[]>('outbox:app_test')) ?? []), theirs]);
    const stream = b.streams.current();
    const pings = b.fake.callsTo('POST', '/ping').length;

    // Tab A: shutdown() then boot() as the next person: the shared cookie now holds a new visitor.
    const next = uuid();
    Cookies.set('parley_vid_app_test', next, { path: '/' });
    history.pushState({}, '', '/cart'); // B's SPA navigates: a ping

    await waitFor(() => expect(b.w.getVisitorId()).toBeNull());
    expect(b.fake.callsTo('POST', '/ping')).toHaveLength(pings); // nothing sent with the new id
    expect(b.fake.visitors.has(next)).toBe(false); // so the server never tied it to u1 (R2)
    expect(cookieValue('parley_vid_app_test')).toBe(next); // the next person's cookie stays
    expect(stream.closed).toBe(true);
    // Only u1's waiting message leaves the shared storage; the other visitor's stays.
    await waitFor(async () => expect(await kv.get('outbox:app_test')).toEqual([theirs]));
    await waitFor(() => expect(b.fake.callsTo('POST', '/logout').map((c) => c.body.visitor_id)).toEqual([old]));
    history.pushState({}, '', '/checkout');
    await new Promise((r) => setTimeout(r, 50));
    expect(b.fake.callsTo('POST', '/ping')).toHaveLength(pings);

    // The next person, in tab A, is a new anonymous visitor: none of u1's conversations.
    const a = harness({ fake: b.fake });
    expect(await a.w.boot(settings())).toEqual({ ok: true });
    expect(a.w.getVisitorId()).toBe(next);
    expect(b.fake.visitors.get(next)).not.toBe(u1);
    expect(b.fake.contacts.get(b.fake.visitors.get(next)!)!.role).toBe('visitor');
  });

  it('an anonymous tab that finds the cookie replaced adopts the new visitor', async () => {
    vi.stubGlobal('BroadcastChannel', undefined);
    const h = harness({ deps: { throttleMs: 0 } });
    await h.w.boot(settings());
    const next = uuid();
    Cookies.set('parley_vid_app_test', next, { path: '/' });
    history.pushState({}, '', '/cart');
    await waitFor(() => expect(h.fake.callsTo('POST', '/ping').at(-1)!.body).toEqual({ app_id: 'app_test', visitor_id: next }));
    expect(h.w.getVisitorId()).toBe(next);
    expect(cookieValue('parley_vid_app_test')).toBe(next);
    expect(h.fake.callsTo('POST', '/logout')).toHaveLength(0);
  });

  it('identity: a replaced cookie is adopted unless `gone` stops the tab; clear() leaves a cookie that holds another id', () => {
    const seen: unknown[] = [];
    let stop = false;
    const idn = createIdentity({ appId: 'r', secure: false, newId: uuid, gone: (n) => (seen.push(n), stop) });
    idn.get();
    const b = uuid();
    document.cookie = `parley_vid_r=${b}; path=/`;
    expect(idn.touch()).toBe(b);
    const c = uuid();
    document.cookie = `parley_vid_r=${c}; path=/`;
    stop = true;
    expect(idn.touch()).toBe(b); // the old id, one last time; the new cookie is not adopted
    expect(idn.get()).toBe(b);
    expect(seen).toEqual([b, c]);
    idn.clear(true);
    expect(cookieValue('parley_vid_r')).toBe(c); // another visitor's cookie is left to them
    idn.get();
    document.cookie = `parley_vid_r=${uuid()}; path=/`;
    idn.clear();
    expect(cookieValue('parley_vid_r')).toBeUndefined(); // a logout deletes it, whoever it holds (R15)
  });

  it('R15: shutdown in a tab whose cookie another tab replaced (it has not pinged since) still deletes the cookie, so the next person is not the other tab\'s user', async () => {
    vi.stubGlobal('BroadcastChannel', undefined);
    const a = harness({ deps: { throttleMs: 60_000 } });
    await a.w.boot(settings({ user_id: 'u1', user_hash: 'h' }));
    // Another tab logged in as w1 and rotated the cookie (R8); this idle tab has not pinged since.
    Cookies.set('parley_vid_app_test', uuid(), { path: '/' });
    await a.w.shutdown();
    expect(cookieValue('parley_vid_app_test')).toBeUndefined();
  });
});
