// The core flows against the real server app (test/support/server-app.ts) on a temp SQLite file:
// msw forwards every widget request to the app's fetch handler, so the widget meets real rules.
import { fireEvent, waitFor, within } from '@testing-library/preact';
import { http, HttpResponse } from 'msw';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, userHash, type TestServer } from '../support/server-app.ts';
import type { App } from '../../server-stub/storage/apps.ts';
import { memoryKV } from '../../widget/storage.ts';
import { createWidget } from '../../widget/widget.ts';
import { cookieValue, fakeStreams, server, shadowContent } from './setup.ts';

const BASE = 'http://localhost:3000';
let t: TestServer;
let app: App;

beforeAll(async () => {
  t = await startTestServer();
  app = await t.createApp({ require_verification: true });
});
afterAll(() => t.close());

/** Forwards every messenger call to the real app; `tap` sees each request first. */
function forward(tap: (r: Request) => Promise<Response | undefined> | undefined = () => undefined) {
  const seen: Array<{ method: string; path: string; body: any }> = [];
  server.use(
    http.all(`${BASE}/v1/*`, async ({ request }) => {
      const url = new URL(request.url);
      const body = request.method === 'POST' ? await request.clone().json() : undefined;
      seen.push({ method: request.method, path: url.pathname + url.search, body });
      const early = await tap(request.clone());
      if (early) return early;
      return t.fetch(new Request(request.url.replace(BASE, 'http://parley.test'), request));
    }),
  );
  return seen;
}

function widget() {
  const streams = fakeStreams();
  const errors: unknown[] = [];
  const w = createWidget({ eventSource: streams.factory, kv: memoryKV(), throttleMs: 50, pollMs: 50, backoffMs: 10, random: () => 0, onError: (e) => errors.push(e) });
  return { w, streams, errors, ui: () => within(shadowContent()) };
}

async function say(ui: () => ReturnType<typeof within>, text: string) {
  const box = await ui().findByRole('textbox', { name: 'Message' });
  fireEvent.input(box, { target: { value: text } });
  fireEvent.keyDown(box, { key: 'Enter' });
}

const admin = (method: string, path: string, body?: unknown) => t.call(method, path, body, { token: app.admin_token });

describe('against the real server', () => {
  it('R1: the first message of an anonymous visitor starts a conversation and makes them a lead, who is offered email notification', async () => {
    forward();
    const h = widget();
    expect(await h.w.boot({ app_id: app.id, api_base: BASE })).toEqual({ ok: true });
    h.w.show();
    await say(h.ui, 'Do you ship to Norway?');
    await h.ui().findByText('Get notified by email');
    const leads = await admin('GET', '/v1/contacts?role=lead');
    expect(leads.status).toBe(200);
    const conv = await admin('GET', `/v1/conversations?contact_id=${leads.body.data[0].id}`);
    expect(conv.body.data).toHaveLength(1);
    await h.w.shutdown();
  });

  it('the lead email is validated before sending, then saved with a lead ping', async () => {
    const seen = forward();
    const h = widget();
    await h.w.boot({ app_id: app.id, api_base: BASE });
    h.w.show();
    await say(h.ui, 'Hello');
    const input = await h.ui().findByLabelText('Get notified by email');
    fireEvent.input(input, { target: { value: 'not-an-email' } });
    fireEvent.click(h.ui().getByRole('button', { name: 'Notify me' }));
    expect((await h.ui().findByRole('alert')).textContent).toMatch(/valid email/);
    expect(input.getAttribute('aria-invalid')).toBe('true');
    expect(seen.filter((s) => s.body?.lead)).toHaveLength(0);
    fireEvent.input(input, { target: { value: 'Kari@Example.com ' } });
    fireEvent.click(h.ui().getByRole('button', { name: 'Notify me' }));
    await h.ui().findByText(/We will notify you at kari@example.com/i);
    expect(seen.filter((s) => s.body?.lead)[0]!.body.lead).toEqual({ email: 'Kari@Example.com' });
    await h.w.shutdown();
  });

  it('a message whose answer is lost is resent with the same client_id and stored once', async () => {
    let lose = 0;
    const seen = forward(async (r) => {
      if (r.method === 'POST' && r.url.includes('/messages') && lose-- > 0) {
        await t.fetch(new Request(r.url.replace(BASE, 'http://parley.test'), r));
        return HttpResponse.error();
      }
      return undefined;
    });
    const h = widget();
    await h.w.boot({ app_id: app.id, api_base: BASE });
    h.w.show();
    await say(h.ui, 'first');
    await waitFor(() => expect(h.ui().queryByText(/Sending/)).toBeNull());
    lose = 1;
    await say(h.ui, 'second');
    await waitFor(() => expect(seen.filter((s) => s.method === 'POST' && s.path.endsWith('/messages'))).toHaveLength(2));
    const [a, b] = seen.filter((s) => s.path.endsWith('/messages'));
    expect(a!.body.client_id).toBe(b!.body.client_id);
    await waitFor(() => expect(h.ui().queryByText(/Sending|Not sent/)).toBeNull());
    const convId = new URL(`http://x${seen.find((s) => s.path.endsWith('/messages'))!.path}`).pathname.split('/')[4];
    const vid = h.w.getVisitorId()!;
    const msgs = await t.call('GET', `/v1/messenger/conversations/${convId}/messages?app_id=${app.id}&visitor_id=${vid}`);
    expect(msgs.body.data.map((m: { body: string }) => m.body)).toEqual(['first', 'second']);
    expect(h.ui().getAllByText('second')).toHaveLength(1);
    await h.w.shutdown();
  });

  it('R2: the login ping carries the visitor id and the signed user; the conversation shows under the user without reload', async () => {
    const seen = forward();
    const h = widget();
    await h.w.boot({ app_id: app.id, api_base: BASE });
    const vid = h.w.getVisitorId();
    h.w.show();
    await say(h.ui, 'Before login');
    await waitFor(() => expect(h.ui().queryByText(/Sending/)).toBeNull());
    const user_hash = userHash(app.identity_secret, 'cust_ada');
    expect(await h.w.update({ user_id: 'cust_ada', email: 'ada@example.com', user_hash })).toEqual({ ok: true });
    const login = seen.filter((s) => s.path.endsWith('/ping')).at(-1)!.body;
    expect(login).toMatchObject({ visitor_id: vid, user: { user_id: 'cust_ada', email: 'ada@example.com', user_hash } });
    await t.drain();
    const users = await admin('GET', '/v1/contacts?user_id=cust_ada');
    const userId = users.body.data[0].id;
    await waitFor(async () => expect((await admin('GET', `/v1/conversations?contact_id=${userId}`)).body.data).toHaveLength(1), { timeout: 5000 });
    // The widget re-fetched: the conversation is listed for the user, with no reload.
    fireEvent.click(h.ui().getByRole('button', { name: 'Back to conversations' }));
    await h.ui().findByRole('button', { name: /Before login/ }, { timeout: 5000 });
    expect(cookieValue(`parley_vid_${app.id}`)).toBe(vid);
    await h.w.shutdown();
  });

  it('an attribute the server would refuse is dropped with a warning: the ping still works', async () => {
    const seen = forward();
    const h = widget();
    expect(await h.w.boot({ app_id: app.id, api_base: BASE, plan: 'pro', notes: 'x'.repeat(2001) })).toEqual({ ok: true });
    expect(seen.filter((s) => s.path.endsWith('/ping'))[0]!.body.attributes).toEqual({ plan: 'pro' });
    expect(h.errors).toEqual([expect.objectContaining({ title: 'Attributes not sent' })]);
    await h.w.shutdown();
  });

  it('a message over 10,000 characters is refused in the composer, with a message; the text stays', async () => {
    const seen = forward();
    const h = widget();
    await h.w.boot({ app_id: app.id, api_base: BASE });
    h.w.show();
    const long = 'a'.repeat(10_001);
    await say(h.ui, long);
    expect((await h.ui().findByRole('alert')).textContent).toMatch(/too long/);
    expect(((await h.ui().findByRole('textbox', { name: 'Message' })) as HTMLTextAreaElement).value).toBe(long);
    expect(seen.filter((s) => s.method === 'POST' && s.path.includes('/conversations'))).toHaveLength(0);
    await say(h.ui, 'a'.repeat(10_000)); // the most the server takes
    await waitFor(() => expect(h.ui().queryByText(/Sending/)).toBeNull());
    expect(h.ui().queryByText(/Not sent/)).toBeNull();
    expect(seen.filter((s) => s.method === 'POST' && s.path.endsWith('/conversations'))).toHaveLength(1);
    await h.w.shutdown();
  });

  it('R14: a login ping with a wrong hash is refused and the failure is shown', async () => {
    forward();
    const h = widget();
    const r = await h.w.boot({ app_id: app.id, api_base: BASE, user_id: 'cust_bob', user_hash: 'deadbeef' });
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error.status).toBe(401);
    h.w.show();
    expect((await h.ui().findByRole('alert')).textContent).toMatch(/verify your identity/);
    await h.w.shutdown();
  });

  it('R8: a cookie that belongs to one user, logging in as another, is replaced', async () => {
    const seen = forward();
    const h = widget();
    await h.w.boot({ app_id: app.id, api_base: BASE, user_id: 'cust_u1', user_hash: userHash(app.identity_secret, 'cust_u1') });
    const old = h.w.getVisitorId();
    const r = await h.w.update({ user_id: 'cust_u2', user_hash: userHash(app.identity_secret, 'cust_u2') });
    expect(r).toEqual({ ok: true });
    expect(h.w.getVisitorId()).not.toBe(old);
    const pings = seen.filter((s) => s.path.endsWith('/ping'));
    expect(pings.at(-2)!.body.visitor_id).toBe(old);
    expect(pings.at(-1)!.body.visitor_id).toBe(h.w.getVisitorId());
    await h.w.shutdown();
  });

  it('catches up with after= when the stream comes back, so an agent reply sent meanwhile is shown', async () => {
    const seen = forward();
    const h = widget();
    await h.w.boot({ app_id: app.id, api_base: BASE });
    h.w.show();
    await say(h.ui, 'Anyone there?');
    await waitFor(() => expect(h.ui().queryByText(/Sending/)).toBeNull());
    const stream = h.streams.current();
    stream.open();
    stream.fail(); // connection drops
    const mine = await t.call('GET', `/v1/messenger/conversations?app_id=${app.id}&visitor_id=${h.w.getVisitorId()}`);
    const reply = await admin('POST', `/v1/conversations/${mine.body.data[0].id}/reply`, { body: 'Yes! How can I help?' });
    expect(reply.status).toBe(201);
    await waitFor(() => expect(h.streams.all.length).toBe(2)); // reconnect after backoff
    h.streams.current().open();
    await h.ui().findByText('Yes! How can I help?');
    expect(seen.some((s) => s.method === 'GET' && /\/messages\?.*after=/.test(s.path))).toBe(true);
    await h.w.shutdown();
  });

  it('R15: shutdown calls logout with the old visitor id; the next boot is a new visitor', async () => {
    const seen = forward();
    const h = widget();
    await h.w.boot({ app_id: app.id, api_base: BASE, user_id: 'cust_z', user_hash: userHash(app.identity_secret, 'cust_z') });
    const old = h.w.getVisitorId();
    expect(await h.w.shutdown()).toEqual({ ok: true });
    expect(seen.at(-1)).toMatchObject({ method: 'POST', path: '/v1/messenger/logout', body: { app_id: app.id, visitor_id: old } });
    expect(cookieValue(`parley_vid_${app.id}`)).toBeUndefined();
    await h.w.boot({ app_id: app.id, api_base: BASE });
    expect(h.w.getVisitorId()).not.toBe(old);
    await h.w.shutdown();
  });
});
