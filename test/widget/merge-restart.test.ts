// A merge not by cookie (bulk, email, CSV, convert, explicit) against the real server app. The
// server moves the lead's conversations to the user, unbinds the lead's cookie (the browser proved
// nothing) and sends `merge` on the lead's stream. The widget must then be the fresh visitor the
// server sees under the same cookie: old view gone, stream re-subscribed, no error banner, and
// what waited in the outbox delivered exactly once. Streams here are the app's real SSE streams,
// so the `merge` event and the agent replies are the server's own.
import { fireEvent, waitFor, within } from '@testing-library/preact';
import { http, HttpResponse } from 'msw';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/server-app.ts';
import type { App } from '../../server-stub/storage/apps.ts';
import type { OutboxItem } from '../../widget/outbox.ts';
import { memoryKV } from '../../widget/storage.ts';
import type { EventSourceLike } from '../../widget/stream.ts';
import { createWidget, type Parley } from '../../widget/widget.ts';
import { server, shadowContent } from './setup.ts';
import { readSse } from '../support/sse.ts';

const BASE = 'http://localhost:3000';
let t: TestServer;
let app: App;

beforeAll(async () => {
  t = await startTestServer();
  app = await t.createApp();
});
afterAll(() => t.close());
// Before the shared afterEach resets the handlers: a test that failed half-way leaves no widget running.
const booted: Parley[] = [];
afterEach(async () => void (await Promise.all(booted.splice(0).map((w) => w.shutdown()))));

const toApp = (url: string) => url.replace(BASE, 'http://parley.test');

/** Forwards every messenger call to the real app; `tap` may answer first (a planned failure). */
function forward(tap: (r: Request) => Promise<Response | undefined> | undefined = () => undefined) {
  server.use(
    http.all(`${BASE}/v1/*`, async ({ request }) => {
      const early = await tap(request.clone());
      return early ?? t.fetch(new Request(toApp(request.url), request));
    }),
  );
}

interface RealStream extends EventSourceLike {
  url: string;
  closed: boolean;
  /** Resolves once the server has subscribed the stream (its `ready` event). */
  ready: Promise<void>;
}

/** EventSource for the widget over the app's own SSE endpoint (no port: its fetch handler). */
function realStreams() {
  const all: RealStream[] = [];
  const factory = (url: string): EventSourceLike => {
    const abort = new AbortController();
    const listeners = new Map<string, Array<(e: MessageEvent) => void>>();
    let ready!: () => void;
    let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
    const es: RealStream = {
      url,
      closed: false,
      ready: new Promise((r) => (ready = r)),
      onopen: null,
      onerror: null,
      addEventListener: (type, fn) => void listeners.set(type, [...(listeners.get(type) ?? []), fn]),
      close() {
        es.closed = true;
        abort.abort();
        void reader?.cancel().catch(() => undefined);
      },
    };
    all.push(es);
    void (async () => {
      const res = await t.fetch(new Request(toApp(url), { signal: abort.signal }));
      if (res.status !== 200) throw new Error(`stream answered ${res.status}`);
      es.onopen?.(new Event('open'));
      reader = res.body!.getReader();
      await readSse(reader, (event, data) => {
        if (event === 'ready') ready();
        if (data) for (const fn of listeners.get(event) ?? []) fn(new MessageEvent(event, { data }));
      });
      throw new Error('stream ended');
    })().catch(() => {
      if (!es.closed) es.onerror?.(new Event('error')); // as a browser's EventSource: the widget reconnects
    });
    return es;
  };
  return { all, factory, open: () => all.filter((s) => !s.closed) };
}

/** A widget that only the live stream can bring replies to (no polling), and whose outbox waits long after a network failure. */
function widget() {
  const streams = realStreams();
  const errors: Array<{ status: number; title: string; detail: string }> = [];
  const kv = memoryKV();
  const w = createWidget({
    eventSource: streams.factory, kv, throttleMs: 50, pollMs: 600_000, backoffMs: 600_000, random: () => 0,
    onError: (e) => errors.push(e),
  });
  booted.push(w);
  return { w, streams, errors, kv, ui: () => within(shadowContent()) };
}
type W = ReturnType<typeof widget>;

async function say(h: W, text: string) {
  const box = await h.ui().findByRole('textbox', { name: 'Message' });
  fireEvent.input(box, { target: { value: text } });
  fireEvent.keyDown(box, { key: 'Enter' });
}

const admin = (method: string, path: string, body?: unknown) => t.call(method, path, body, { token: app.admin_token });
const messenger = (path: string, visitorId: string) => t.call('GET', `/v1/messenger${path}?app_id=${app.id}&visitor_id=${visitorId}`);
/** The bodies of every message of a contact, conversation by conversation. */
async function bodiesOf(contactId: string): Promise<string[][]> {
  const convs = (await admin('GET', `/v1/conversations?contact_id=${contactId}`)).body.data as Array<{ id: string }>;
  return Promise.all(convs.map(async (c) => (await admin('GET', `/v1/conversations/${c.id}/messages`)).body.data.map((m: { body: string }) => m.body)));
}
/** How many messages in the whole app have this body. */
async function stored(body: string): Promise<number> {
  const convs = (await admin('GET', '/v1/conversations?limit=1000')).body.data as Array<{ id: string }>;
  let n = 0;
  for (const c of convs) n += (await admin('GET', `/v1/conversations/${c.id}/messages`)).body.data.filter((m: { body: string }) => m.body === body).length;
  return n;
}

/** Boots a visitor who has one delivered conversation, with its stream subscribed. Answers the lead's contact id. */
async function leadWithConversation(h: W, first: string): Promise<string> {
  expect(await h.w.boot({ app_id: app.id, api_base: BASE })).toEqual({ ok: true });
  h.w.show();
  await say(h, first);
  await waitFor(() => expect(h.ui().queryByText(/Sending/)).toBeNull());
  await h.streams.all[0]!.ready;
  const lead = await t.call('POST', '/v1/messenger/ping', { app_id: app.id, visitor_id: h.w.getVisitorId() });
  expect(lead.body.contact.role).toBe('lead');
  return lead.body.contact.id;
}

const notFound = (h: W) => h.errors.filter((e) => e.status === 404);

describe('a merge not by cookie (R6): the widget starts afresh as the visitor the server now sees', () => {
  it('R11: after a bulk merge the old conversation is gone, no banner shows, and an agent reply to the new conversation arrives live', async () => {
    forward();
    const h = widget();
    await leadWithConversation(h, 'Hello, this is Kari');
    const vid = h.w.getVisitorId()!;
    // R3: the lead leaves an email; a user with that email exists; the bulk merge (R11) takes it.
    await t.call('POST', '/v1/messenger/ping', { app_id: app.id, visitor_id: vid, lead: { email: 'kari@example.com' } });
    const user = await admin('POST', '/v1/contacts', { role: 'user', user_id: 'cust_kari', email: 'kari@example.com' });
    expect((await admin('POST', '/v1/merges/bulk', {})).body.merged).toBe(1);

    // The stream of the merged-away lead is closed and a new one is subscribed for the new visitor.
    await waitFor(() => expect(h.streams.all).toHaveLength(2));
    await h.streams.all[1]!.ready;
    expect(h.streams.all[0]!.closed).toBe(true);
    expect(h.streams.open()).toHaveLength(1);
    // The cookie stays; the old conversation, now the user's, is no longer shown; no error.
    expect(h.w.getVisitorId()).toBe(vid);
    await waitFor(() => expect(h.ui().queryByText('Hello, this is Kari')).toBeNull());
    expect(h.ui().queryByRole('alert')).toBeNull();
    expect(notFound(h)).toEqual([]);

    h.w.showNewMessage();
    await say(h, 'Are you still there?');
    await waitFor(() => expect(h.ui().queryByText(/Sending/)).toBeNull());
    const mine = (await messenger('/conversations', vid)).body.data;
    expect(mine).toHaveLength(1);
    expect((await admin('POST', `/v1/conversations/${mine[0].id}/reply`, { body: 'Yes, still here!' })).status).toBe(201);
    await h.ui().findByText('Yes, still here!'); // no polling in this widget: only the live stream brings it
    expect(await bodiesOf(user.body.id)).toEqual([['Hello, this is Kari']]);
    expect(h.ui().queryByRole('alert')).toBeNull();
    await h.w.shutdown();
  });

  it('R10: a message waiting in the outbox for the merged-away conversation starts a new conversation, stored once, without a banner', async () => {
    let down = false;
    forward(async (r) => (down && r.method === 'POST' && r.url.endsWith('/messages') ? HttpResponse.error() : undefined));
    const h = widget();
    const leadId = await leadWithConversation(h, 'Do you ship to Norway?');
    const vid = h.w.getVisitorId()!;
    down = true;
    await say(h, 'And to Iceland?');
    await h.ui().findByText(/Not sent/);
    fireEvent.click(h.ui().getByRole('button', { name: 'Dismiss' })); // the offline banner: only the merge is watched here
    const user = await admin('POST', '/v1/contacts', { role: 'user', user_id: 'cust_norway' });
    down = false;
    expect((await admin('POST', '/v1/contacts/merge', { from: leadId, into: user.body.id })).status).toBe(200);

    // Delivered into a new conversation of the new visitor, and shown where the visitor is looking.
    await waitFor(async () => expect((await messenger('/conversations', vid)).body.data).toHaveLength(1));
    await waitFor(() => expect(h.ui().queryByText(/Sending|Not sent/)).toBeNull());
    expect(within(h.ui().getByRole('list', { name: 'Messages' })).getByText('And to Iceland?')).toBeTruthy();
    expect(h.ui().queryByText('Do you ship to Norway?')).toBeNull();
    expect(h.ui().queryByRole('alert')).toBeNull();
    expect(notFound(h)).toEqual([]);
    const [conv] = (await messenger('/conversations', vid)).body.data;
    expect((await messenger(`/conversations/${conv.id}/messages`, vid)).body.data.map((m: { body: string }) => m.body)).toEqual(['And to Iceland?']);
    expect(await bodiesOf(user.body.id)).toEqual([['Do you ship to Norway?']]);
    expect(await stored('And to Iceland?')).toBe(1);
    await waitFor(async () => expect(await h.kv.get<OutboxItem[]>(`outbox:${app.id}`)).toEqual([]));

    // The new conversation is live: the stream was re-subscribed.
    await admin('POST', `/v1/conversations/${conv.id}/reply`, { body: 'Iceland too.' });
    await h.ui().findByText('Iceland too.');
    await h.w.shutdown();
  });

  it('R12: a message stored just before the merge whose answer was lost is not stored a second time', async () => {
    let mode: 'up' | 'lose' | 'down' = 'up';
    forward(async (r) => {
      if (r.method !== 'POST' || !r.url.endsWith('/messages') || mode === 'up') return undefined;
      if (mode === 'lose') {
        mode = 'down';
        await t.fetch(new Request(toApp(r.url), r)); // stored, but the answer never comes back
      }
      return HttpResponse.error();
    });
    const h = widget();
    const leadId = await leadWithConversation(h, 'Is this in stock?');
    const vid = h.w.getVisitorId()!;
    mode = 'lose';
    await say(h, 'The blue one, size M');
    // Waiting to be resent (the thread shows it anyway: the stream pushed the stored message).
    await waitFor(async () => expect(await h.kv.get<OutboxItem[]>(`outbox:${app.id}`)).toMatchObject([{ body: 'The blue one, size M', status: 'failed' }]));
    expect(await stored('The blue one, size M')).toBe(1);
    const user = await admin('POST', '/v1/contacts', { role: 'user', user_id: 'cust_blue' });
    mode = 'up';
    expect((await admin('POST', '/v1/contacts/merge', { from: leadId, into: user.body.id })).status).toBe(200);

    await waitFor(async () => expect(await h.kv.get<OutboxItem[]>(`outbox:${app.id}`)).toEqual([]));
    await waitFor(() => expect(h.ui().queryByText(/Sending|Not sent/)).toBeNull());
    expect(await stored('The blue one, size M')).toBe(1);
    expect(await bodiesOf(user.body.id)).toEqual([['Is this in stock?', 'The blue one, size M']]);
    expect((await messenger('/conversations', vid)).body.data).toEqual([]);
    expect(h.errors.filter((e) => e.status === 404 || e.status === 409)).toEqual([]);
    await h.w.shutdown();
  });

  it('R2: a cookie merge still follows the user: same stream, same conversation, and a waiting message goes into it', async () => {
    let down = false;
    forward(async (r) => (down && r.method === 'POST' && r.url.endsWith('/messages') ? HttpResponse.error() : undefined));
    const h = widget();
    await leadWithConversation(h, 'Before login');
    down = true;
    await say(h, 'Typed while offline');
    await h.ui().findByText(/Not sent/);
    expect(await h.w.update({ user_id: 'cust_cookie' })).toEqual({ ok: true });
    await t.drain();
    const user = (await admin('GET', '/v1/contacts?user_id=cust_cookie')).body.data[0];
    await waitFor(async () => expect((await admin('GET', `/v1/merges?contact_id=${user.id}`)).body.data[0]?.trigger).toBe('cookie'));
    down = false;
    window.dispatchEvent(new Event('online'));
    await waitFor(async () => expect(await bodiesOf(user.id)).toEqual([['Before login', 'Typed while offline']]));
    expect(h.streams.all).toHaveLength(1);
    expect(h.streams.open()).toHaveLength(1);
    await waitFor(() => expect(h.ui().queryByText(/Sending|Not sent/)).toBeNull());
    expect(h.ui().getByText('Before login')).toBeTruthy();
    await h.w.shutdown();
  });
});
