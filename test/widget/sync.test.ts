import { waitFor, fireEvent } from '@testing-library/preact';
import { describe, expect, it } from 'vitest';
import type { Api } from '../../widget/api.ts';
import { platformTimers } from '../../widget/env.ts';
import { createStore, initialState, withMessages } from '../../widget/store.ts';
import { createSync } from '../../widget/sync.ts';
import type { Message } from '../../widget/types.ts';
import { fakeStreams, harness, settings } from './setup.ts';

describe('realtime', () => {
  it('opens the stream for the app and visitor once the first ping has answered (the server streams only to known visitors)', async () => {
    const h = harness();
    const booting = h.w.boot(settings());
    expect(h.streams.all).toHaveLength(0);
    await booting;
    expect(h.streams.all).toHaveLength(1);
    expect(h.fake.callsTo('POST', '/ping')).toHaveLength(1);
    const url = new URL(h.streams.current().url);
    expect(url.pathname).toBe('/v1/messenger/stream');
    expect(Object.fromEntries(url.searchParams)).toEqual({ app_id: 'app_test', visitor_id: h.w.getVisitorId() });
  });

  it('reconnects with backoff after an error and catches up with after=<last message id>', async () => {
    const h = harness({ deps: { pollMs: 60_000 } }); // no polling: only the reconnect catches up
    await h.w.boot(settings());
    h.w.show();
    const box = await h.ui().findByRole('textbox', { name: 'Message' });
    fireEvent.input(box, { target: { value: 'question' } });
    fireEvent.keyDown(box, { key: 'Enter' });
    await waitFor(() => expect(h.fake.conversations.size).toBe(1));
    const convId = [...h.fake.conversations.keys()][0]!;
    const last = h.fake.conversations.get(convId)!.messages.at(-1)!.id;
    const first = h.streams.current();
    first.open();
    await waitFor(() => expect(h.fake.callsTo('GET', `/conversations/${convId}/messages`).length).toBeGreaterThan(0));
    first.fail();
    expect(first.closed).toBe(true);
    h.fake.reply(convId, 'answer sent while offline'); // never pushed on a stream
    await waitFor(() => expect(h.streams.all).toHaveLength(2));
    const before = h.fake.callsTo('GET', `/conversations/${convId}/messages`).length;
    h.streams.current().open();
    await h.ui().findByText('answer sent while offline');
    const catchUp = h.fake.callsTo('GET', `/conversations/${convId}/messages`)[before]!;
    expect(catchUp.query.after).toBe(last);
  });

  it('a merge event re-fetches the conversations and the contact', async () => {
    const h = harness();
    await h.w.boot(settings());
    const lists = h.fake.callsTo('GET', '/conversations').length;
    const pings = h.fake.callsTo('POST', '/ping').length;
    h.streams.current().emit('merge', { from: 'c1', into: 'u1', trigger: 'cookie' });
    await waitFor(() => expect(h.fake.callsTo('GET', '/conversations').length).toBeGreaterThan(lists));
    await waitFor(() => expect(h.fake.callsTo('POST', '/ping').length).toBeGreaterThan(pings));
  });

  it('the unread event drives the badge and onUnreadCountChange', async () => {
    const h = harness();
    const seen: number[] = [];
    h.w.onUnreadCountChange((n) => seen.push(n));
    await h.w.boot(settings());
    await waitFor(() => expect(h.fake.callsTo('GET', '/conversations').length).toBeGreaterThan(0));
    await new Promise((r) => setTimeout(r, 30)); // let the boot-time list settle first
    h.streams.current().emit('unread', { unread_count: 3 });
    await waitFor(() => expect(seen.at(-1)).toBe(3));
    const launcher = await h.ui().findByRole('button', { name: 'Open chat, 3 unread' });
    expect(launcher.textContent).toContain('3 unread');
  });

  it('polls when there is no EventSource, and still gets replies', async () => {
    const h = harness({ deps: { eventSource: null } });
    await h.w.boot(settings());
    h.w.show();
    const box = await h.ui().findByRole('textbox', { name: 'Message' });
    fireEvent.input(box, { target: { value: 'hi' } });
    fireEvent.keyDown(box, { key: 'Enter' });
    await waitFor(() => expect(h.fake.conversations.size).toBe(1));
    const convId = [...h.fake.conversations.keys()][0]!;
    h.fake.reply(convId, 'polled reply');
    await h.ui().findByText('polled reply');
  });

  it('a malformed stream event is reported, not thrown', async () => {
    const h = harness();
    await h.w.boot(settings());
    const es = h.streams.current();
    (es as unknown as { listeners: Map<string, Array<(e: MessageEvent) => void>> }).listeners
      .get('message')!
      .forEach((fn) => fn(new MessageEvent('message', { data: '{not json' })));
    expect(h.errors).toContainEqual(expect.objectContaining({ title: 'Bad stream event' }));
  });

  it('a message pushed on the new stream while the catch-up is under way does not hide what came while it was down', async () => {
    const msg = (id: string, body: string): Message => ({
      id, conversation_id: 'cnv1', body, author: { type: 'agent', id: 'a' }, created_at: '2026-01-01T00:00:00.000Z',
    });
    const server = [msg('m0', 'hello'), msg('m1', 'sent while the stream was down'), msg('m2', 'sent just after reconnect')];
    const afters: (string | undefined)[] = [];
    let releaseList!: () => void;
    const api = {
      conversations: () =>
        new Promise((ok) => {
          releaseList = () => ok({ ok: true, value: { data: [{ id: 'cnv1', last_message: server[2], unread_count: 0, updated_at: 'x' }] } });
        }),
      messages: async (_c: string, _v: string, after?: string) => {
        afters.push(after);
        return { ok: true, value: { data: server.slice(after ? server.findIndex((m) => m.id === after) + 1 : 0) } };
      },
      read: async () => ({ ok: true, value: null }),
      streamUrl: () => 'https://chat.example.com/stream',
    } as unknown as Api;
    const store = createStore();
    store.set({ conversations: [{ id: 'cnv1', last_message: server[0], unread_count: 0, updated_at: 'x' } as never], messages: { cnv1: [server[0]!] } });
    const streams = fakeStreams();
    const sync = createSync({
      api, store, visitor: () => 'v', report: () => {}, warn: () => {}, timers: platformTimers,
      factory: streams.factory, delay: () => 0, pollMs: 1e9, onUp: () => {}, onMerge: () => {},
    });
    sync.start();
    streams.current().open(); // (re)connected: the catch-up starts; m1 was published while no stream was open
    streams.current().emit('message', server[2]); // pushed on the new stream before the list has answered
    releaseList();
    await waitFor(() => expect(afters).toEqual(['m0']));
    await waitFor(() => expect(store.get().messages.cnv1!.map((m) => m.id)).toEqual(['m0', 'm1', 'm2']));
    sync.dispose();
  });

  it('R2, R6: a merge event by cookie follows the user and catches up; any other trigger hands over to a fresh start without touching the old threads', async () => {
    const calls: string[] = [];
    const api = {
      conversations: async () => (calls.push('list'), { ok: true, value: { data: [] } }),
      messages: async () => (calls.push('thread'), { ok: true, value: { data: [] } }),
      streamUrl: () => 'https://chat.example.com/stream',
    } as unknown as Api;
    const store = createStore();
    store.set({ messages: { cnv1: [] } });
    const merges: boolean[] = [];
    const streams = fakeStreams();
    const sync = createSync({
      api, store, visitor: () => 'v', report: () => {}, warn: () => {}, timers: platformTimers,
      factory: streams.factory, delay: () => 0, pollMs: 1e9, onUp: () => {}, onMerge: (follow) => merges.push(follow),
    });
    sync.start();
    for (const trigger of ['bulk', 'email', 'csv', 'convert', 'explicit']) streams.current().emit('merge', { from: 'c1', into: 'u1', trigger });
    await new Promise((r) => setTimeout(r, 10));
    expect(merges).toEqual([false, false, false, false, false]);
    expect(calls).toEqual([]);
    streams.current().emit('merge', { from: 'c1', into: 'u1', trigger: 'cookie' });
    await waitFor(() => expect(calls).toEqual(['list', 'thread']));
    expect(merges.at(-1)).toBe(true);
    sync.dispose();
  });

  it('reset() forgets the old visitor: its view, its stream, and answers still under way (no stale list, no error banner)', async () => {
    const old: Message = { id: 'm0', conversation_id: 'cnv1', body: 'old', author: { type: 'agent', id: 'a' }, created_at: 'x' };
    const pending: Array<() => void> = [];
    const later = <T>(v: T) => new Promise<T>((ok) => pending.push(() => ok(v)));
    const api = {
      conversations: () => later({ ok: true, value: { data: [{ id: 'cnv1', last_message: old, unread_count: 1, updated_at: 'x' }] } }),
      messages: () => later({ ok: false, error: { status: 404, type: 'https://parley.dev/problems/not-found', title: 'Not Found', detail: 'conversation not found' } }),
      read: () => later({ ok: false, error: { status: 404, type: 'https://parley.dev/problems/not-found', title: 'Not Found', detail: 'conversation not found' } }),
      streamUrl: () => 'https://chat.example.com/stream',
    } as unknown as Api;
    const store = createStore();
    store.set({ conversations: [{ id: 'cnv1', last_message: old, unread_count: 1, updated_at: 'x' }], messages: { cnv1: [old] }, thread: 'cnv1', unread: 1 });
    const reported: unknown[] = [];
    const streams = fakeStreams();
    const sync = createSync({
      api, store, visitor: () => 'v', report: (e) => reported.push(e), warn: () => {}, timers: platformTimers,
      factory: streams.factory, delay: () => 0, pollMs: 1e9, onUp: () => {}, onMerge: () => {},
    });
    sync.start();
    const first = streams.current();
    void sync.catchUp();
    void sync.read('cnv1');
    await waitFor(() => expect(pending.length).toBeGreaterThanOrEqual(2));
    sync.reset('new');
    expect(first.closed).toBe(true);
    expect(store.get()).toMatchObject({ conversations: [], messages: {}, thread: 'new', contact: null, unread: 0 });
    while (pending.length) {
      pending.splice(0).forEach((f) => f());
      await new Promise((r) => setTimeout(r, 0));
    }
    expect(store.get()).toMatchObject({ conversations: [], messages: {}, unread: 0 });
    expect(reported).toEqual([]);
    sync.start(); // the same URL: a new stream all the same, for the visitor the cookie is now
    expect(streams.all).toHaveLength(2);
    expect(streams.current()).not.toBe(first);
    sync.dispose();
  });

  it('threads stay sorted by id and hold each message once', () => {
    const m = (id: string) => ({ id, conversation_id: 'c', body: id, author: { type: 'agent', id: 'a' }, created_at: '' }) as Message;
    let s = { ...initialState(), ...withMessages(initialState(), 'c', [m('b'), m('d')]) };
    s = { ...s, ...withMessages(s, 'c', [m('c'), m('a'), m('d'), m('c')]) };
    expect(s.messages.c!.map((x) => x.id)).toEqual(['a', 'b', 'c', 'd']);
  });
});
