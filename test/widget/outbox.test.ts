import { fireEvent, waitFor } from '@testing-library/preact';
import { http, HttpResponse } from 'msw';
import { describe, expect, it } from 'vitest';
import { createOutbox, type Delivered, type OutboxItem } from '../../widget/outbox.ts';
import { fallbackKV, idbKV, memoryKV, type KV } from '../../widget/storage.ts';
import { platformTimers } from '../../widget/env.ts';
import type { Result } from '../../widget/types.ts';
import { BASE } from './handlers.ts';
import { harness, server, settings, type Harness } from './setup.ts';

async function type(h: Harness, text: string): Promise<void> {
  const box = (await h.ui().findByRole('textbox', { name: 'Message' })) as HTMLTextAreaElement;
  fireEvent.input(box, { target: { value: text } });
  fireEvent.keyDown(box, { key: 'Enter' });
}

describe('storage port', () => {
  it('falls back to memory when IndexedDB fails, and says so', async () => {
    const reported: unknown[] = [];
    const broken: KV = {
      get: () => Promise.reject(new Error('no IndexedDB')),
      set: () => Promise.reject(new Error('no IndexedDB')),
      del: () => Promise.reject(new Error('no IndexedDB')),
    };
    const kv = fallbackKV(broken, memoryKV(), (e) => reported.push(e));
    await kv.set('a', [1]);
    expect(await kv.get('a')).toEqual([1]);
    await kv.del('a');
    expect(await kv.get('a')).toBeUndefined();
    expect(reported).toHaveLength(1);
  });

  it('the IndexedDB store reports a missing IndexedDB as a failure (so the fallback takes over)', async () => {
    await expect(idbKV().get('x')).rejects.toBeTruthy();
  });
});

describe('outbox', () => {
  it('saves a message before sending it', async () => {
    const kv = memoryKV();
    const seen: unknown[] = [];
    let release!: (r: Result<never>) => void;
    const outbox = createOutbox({
      kv,
      key: 'k',
      send: async () => {
        seen.push(await kv.get('k'));
        return new Promise((r) => (release = r));
      },
      timers: platformTimers,
      delay: () => 10,
      onChange: () => {},
      onDelivered: () => {},
      onError: () => {},
    });
    await outbox.add({ client_id: 'c1', visitor_id: 'v', body: 'hi', created_at: '', conversation_id: 'x' });
    await waitFor(() => expect(seen).toHaveLength(1));
    expect((seen[0] as OutboxItem[])[0]).toMatchObject({ client_id: 'c1', body: 'hi' });
    release({ ok: false, error: { status: 400, type: 'about:blank', title: 'bad', detail: '' } });
  });

  /**
   * An outbox over a scripted server: `answer` decides each send once `up()` was called (the
   * network is down before, so items queue up together); sends from then on are logged.
   */
  function scripted(answer: (i: OutboxItem) => Result<Delivered>) {
    let online = false;
    const sent: Array<{ client_id: string; to: string | null }> = [];
    const delivered: Array<{ client_id: string; to: string }> = [];
    const errors: unknown[] = [];
    const outbox = createOutbox({
      kv: memoryKV(),
      key: 'k',
      send: async (i) => (online ? (sent.push({ client_id: i.client_id, to: i.conversation_id }), answer(i)) : problem(0, 'network')),
      timers: platformTimers,
      delay: () => 60_000,
      onChange: () => {},
      onDelivered: (i, d) => delivered.push({ client_id: i.client_id, to: d.conversation_id }),
      onError: (e) => errors.push(e),
    });
    const up = async () => {
      await waitFor(() => expect(outbox.items().every((i) => i.status === 'failed')).toBe(true));
      errors.length = 0;
      online = true;
      await outbox.flush();
    };
    return { outbox, sent, delivered, errors, up };
  }
  const item = (client_id: string, conversation_id: string | null, start_id?: string) =>
    ({ client_id, visitor_id: 'v', body: client_id, created_at: '', conversation_id, ...(start_id ? { start_id } : {}) });
  const ok = (conversation_id: string, client_id: string): Result<Delivered> => ({
    ok: true,
    value: { conversation_id, message: { id: 'm-' + client_id, body: client_id, author: { type: 'contact', id: 'c' }, created_at: '' } },
  });
  const problem = (status: number, slug: string): Result<never> => ({
    ok: false,
    error: { status, type: `https://parley.dev/problems/${slug}`, title: slug, detail: '' },
  });

  it('R6: messages for a conversation that answers 404 (merged away) start one new conversation, in order, each once, with no error shown', async () => {
    const gone = new Set(['old1', 'old2']);
    let n = 0;
    const s = scripted((i) => (i.conversation_id && gone.has(i.conversation_id) ? problem(404, 'not-found') : ok(i.conversation_id ?? `new${++n}`, i.client_id)));
    // Three messages for one lost conversation, one for another; a failed start keeps them waiting.
    await s.outbox.add(item('a', 'old1'));
    await s.outbox.add(item('b', 'old1'));
    await s.outbox.add(item('c', 'old2'));
    await s.outbox.add(item('d', 'old1'));
    await s.up();
    await waitFor(() => expect(s.outbox.items()).toEqual([]));
    expect(s.delivered).toEqual([
      { client_id: 'a', to: 'new1' },
      { client_id: 'b', to: 'new1' },
      { client_id: 'c', to: 'new2' },
      { client_id: 'd', to: 'new1' },
    ]);
    // Each went to its lost conversation at most once, then by its own client_id into the new one.
    expect(s.sent.filter((x) => x.to === null).map((x) => x.client_id)).toEqual(['a', 'c']);
    expect(s.errors).toEqual([]);
  });

  it('R12: a conversation start answered client-id-conflict was stored already (its answer was lost): it is dropped, not resent, and what waited for it starts a conversation', async () => {
    const s = scripted((i) => (i.client_id === 'a' ? problem(409, 'client-id-conflict') : ok(i.conversation_id ?? 'new1', i.client_id)));
    await s.outbox.add(item('a', null));
    await s.outbox.add(item('b', null, 'a'));
    await s.outbox.add(item('c', null, 'a'));
    await s.up();
    await waitFor(() => expect(s.outbox.items()).toEqual([]));
    expect(s.sent).toEqual([
      { client_id: 'a', to: null },
      { client_id: 'b', to: null },
      { client_id: 'c', to: 'new1' },
    ]);
    expect(s.delivered.map((x) => x.client_id)).toEqual(['b', 'c']);
    expect(s.errors).toEqual([]);
  });

  it('a 404 on a conversation start is an error like any other (nothing to regroup)', async () => {
    const s = scripted(() => problem(404, 'not-found'));
    await s.outbox.add(item('a', null));
    await s.up();
    await waitFor(() => expect(s.outbox.items()).toMatchObject([{ client_id: 'a', status: 'failed' }]));
    expect(s.sent).toHaveLength(1);
    expect(s.errors).toHaveLength(1);
  });

  it.each<[number, boolean]>([
    [400, true], [401, true], [403, true], [404, true], [413, true], [422, true],
    [0, false], [408, false], [409, false], [429, false], [500, false], [503, false],
  ])('a start answered %i is refused for good: %s', async (status, refused) => {
    const outbox = createOutbox({
      kv: memoryKV(),
      key: 'k',
      send: async () => problem(status, 'x'),
      timers: platformTimers,
      delay: () => 60_000,
      onChange: () => {},
      onDelivered: () => {},
      onError: () => {},
    });
    await outbox.add(item('a', null));
    await waitFor(() => expect(outbox.items()[0]!.status).toBe('failed'));
    expect(outbox.items()[0]!.refused).toBe(refused);
    await outbox.clear(true);
  });

  it('a message refused for good is kept with its reason but not resent by load or flush; Retry sends it again; Discard drops it and what waited for it starts', async () => {
    const kv = memoryKV();
    const sent: string[] = [];
    const answer = (i: OutboxItem): Result<Delivered> => (i.client_id === 'a' ? problem(400, 'invalid-request') : ok('new1', i.client_id));
    const page = () =>
      createOutbox({
        kv,
        key: 'k',
        send: async (i) => (sent.push(i.client_id), answer(i)),
        timers: platformTimers,
        delay: () => 60_000,
        onChange: () => {},
        onDelivered: () => {},
        onError: () => {},
      });
    const one = page();
    await one.add(item('a', null));
    await waitFor(() => expect(one.items()).toMatchObject([{ client_id: 'a', status: 'failed', error: 'invalid-request', refused: true }]));
    await one.add(item('b', null, 'a')); // typed after: waits for a's conversation
    await one.flush();
    expect(sent).toEqual(['a']);
    const two = page(); // the next page load
    await two.load();
    expect(two.items()).toMatchObject([{ client_id: 'a', status: 'failed', error: 'invalid-request', refused: true }, { client_id: 'b' }]);
    expect(sent).toEqual(['a']);
    await two.retry('a');
    expect(sent).toEqual(['a', 'a']);
    expect(two.items()[0]).toMatchObject({ client_id: 'a', refused: true });
    await two.discard('a');
    expect(sent).toEqual(['a', 'a', 'b']);
    expect(two.items()).toEqual([]);
    expect(await kv.get('k')).toEqual([]);
  });

  it('R6: restart() turns what waits for a known conversation into new conversation starts, keeping client_ids; pending starts are untouched', async () => {
    const s = scripted((i) => ok(i.conversation_id ?? 'n-' + i.client_id, i.client_id));
    await s.outbox.add(item('a', 'old1'));
    await s.outbox.add(item('p', null));
    await s.outbox.add(item('q', null, 'p'));
    await s.outbox.add(item('b', 'old1'));
    await waitFor(() => expect(s.outbox.items().every((i) => i.status === 'failed')).toBe(true));
    await s.outbox.restart();
    expect(s.outbox.items().map(({ client_id, conversation_id, start_id }) => ({ client_id, conversation_id, start_id }))).toEqual([
      { client_id: 'a', conversation_id: null, start_id: undefined },
      { client_id: 'p', conversation_id: null, start_id: undefined },
      { client_id: 'q', conversation_id: null, start_id: 'p' },
      { client_id: 'b', conversation_id: null, start_id: 'a' },
    ]);
    await s.up();
    await waitFor(() => expect(s.outbox.items()).toEqual([]));
    expect(s.delivered).toEqual([
      { client_id: 'a', to: 'n-a' },
      { client_id: 'p', to: 'n-p' },
      { client_id: 'q', to: 'n-p' },
      { client_id: 'b', to: 'n-a' },
    ]);
  });

  it('R15: a save under way when clear() runs writes nothing of the old visitor back', async () => {
    const mem = memoryKV();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const kv: KV = { ...mem, get: async (k) => (await gate, mem.get(k)) };
    const sent: string[] = [];
    const outbox = createOutbox({
      kv,
      key: 'k',
      send: async (i) => (sent.push(i.client_id), { ok: false, error: { status: 0, type: 'about:blank', title: 'offline', detail: '' } }),
      timers: platformTimers,
      delay: () => 60_000,
      onChange: () => {},
      onDelivered: () => {},
      onError: () => {},
    });
    const adding = outbox.add({ client_id: 'old', visitor_id: 'v', body: 'old visitor', created_at: '', conversation_id: 'c' });
    const loading = outbox.load();
    await outbox.clear();
    release();
    await Promise.all([adding, loading]);
    await new Promise((r) => setTimeout(r, 20));
    expect(await mem.get('k')).toBeUndefined();
    expect(outbox.items()).toEqual([]);
    expect(sent).toEqual([]);
  });

  it('two tabs sharing the store keep each other\'s waiting messages', async () => {
    const kv = memoryKV();
    const up = { value: false };
    const sent: string[] = [];
    const make = () =>
      createOutbox({
        kv,
        key: 'k',
        send: async (i) => {
          if (!up.value) return { ok: false, error: { status: 0, type: 'about:blank', title: 'offline', detail: '' } };
          sent.push(i.client_id);
          return { ok: true, value: { conversation_id: 'c', message: { id: 'm-' + i.client_id, body: i.body, author: { type: 'contact', id: 'x' }, created_at: '' } } };
        },
        timers: platformTimers,
        delay: () => 60_000,
        onChange: () => {},
        onDelivered: () => {},
        onError: () => {},
      });
    const a = make();
    const b = make();
    await a.add({ client_id: 'from-a', visitor_id: 'v', body: 'a', created_at: '', conversation_id: 'c' });
    await b.add({ client_id: 'from-b', visitor_id: 'v', body: 'b', created_at: '', conversation_id: 'c' });
    await waitFor(async () => expect((await kv.get<OutboxItem[]>('k'))?.map((i) => i.client_id).sort()).toEqual(['from-a', 'from-b']));
    up.value = true;
    await a.flush();
    expect((await kv.get<OutboxItem[]>('k'))!.map((i) => i.client_id)).toEqual(['from-b']);
    await b.flush();
    expect(await kv.get('k')).toEqual([]);
    expect(sent).toEqual(['from-a', 'from-b']);
  });

  it('a message typed while the network is down shows "Not sent – Retry", survives a reload and is delivered exactly once', async () => {
    const kv = memoryKV();
    const first = harness({ kv, deps: { backoffMs: 60_000 } });
    await first.w.boot(settings());
    first.fake.fail('POST /conversations', 'network', Infinity);
    first.w.show();
    await type(first, 'Is the teapot in stock?');
    const ui = first.ui();
    await ui.findByText(/Not sent/);
    expect(ui.getByRole('button', { name: 'Retry' })).toBeTruthy();
    expect(ui.getByText('Is the teapot in stock?')).toBeTruthy();
    const saved = (await kv.get<OutboxItem[]>('outbox:app_test'))!;
    expect(saved).toHaveLength(1);
    const clientId = saved[0]!.client_id;
    expect(clientId).toMatch(/^[0-9a-f-]{36}$/);
    // The conversation start carries the message's own client_id.
    expect(first.fake.callsTo('POST', '/conversations')[0]!.body).toMatchObject({ client_id: clientId, body: 'Is the teapot in stock?' });

    // The page goes away (its UI with it); the network comes back; the next page load sends it.
    document.body.innerHTML = '';
    first.fake.heal('POST /conversations');
    const second = harness({ kv, fake: first.fake });
    await second.w.boot(settings());
    await waitFor(() => expect(first.fake.messagesWithClientId(clientId)).toHaveLength(1));
    // The first page's outbox is still alive in this test and resends on `online`: sent twice, stored once.
    window.dispatchEvent(new Event('online'));
    await waitFor(() =>
      expect(first.fake.callsTo('POST', '/conversations').filter((c) => c.body.client_id === clientId).length).toBe(3),
    );
    expect(first.fake.messagesWithClientId(clientId)).toHaveLength(1);
    expect(first.fake.conversations.size).toBe(1);
    (await second.ui().findByRole('button', { name: 'Open chat' })).click();
    await waitFor(() => expect(second.ui().getAllByText('Is the teapot in stock?')).toHaveLength(1));
    await waitFor(async () => expect(await kv.get('outbox:app_test')).toEqual([]));
  });

  it('a message the server refuses shows the reason, Retry and Discard; the next page load neither resends it nor shows the error again', async () => {
    let refusals = 0;
    const kv = memoryKV();
    const first = harness({ kv, deps: { backoffMs: 60_000 } });
    await first.w.boot(settings());
    server.use(
      http.post(`${BASE}/v1/messenger/conversations`, () => {
        refusals++;
        const p = { type: 'https://parley.dev/problems/invalid-request', title: 'Bad request', status: 400, detail: 'body: too long' };
        return HttpResponse.json(p, { status: 400 });
      }),
    );
    first.w.show();
    await type(first, 'refused words');
    await first.ui().findByText(/Not sent: Bad request/);
    expect(first.ui().getByRole('button', { name: 'Retry' })).toBeTruthy();
    expect(first.ui().getByRole('button', { name: 'Discard' })).toBeTruthy();
    expect(refusals).toBe(1);

    document.body.innerHTML = ''; // the page goes away; the next one loads
    const second = harness({ kv, fake: first.fake });
    await second.w.boot(settings());
    await new Promise((r) => setTimeout(r, 50));
    expect(refusals).toBe(1);
    second.w.show();
    const ui = second.ui();
    fireEvent.click(await ui.findByRole('button', { name: /refused words/ }));
    await ui.findByText(/Not sent: Bad request/);
    expect(ui.queryByRole('alert')).toBeNull();
    fireEvent.click(ui.getByRole('button', { name: 'Discard' }));
    await waitFor(() => expect(ui.queryByText('refused words')).toBeNull());
    expect(await kv.get('outbox:app_test')).toEqual([]);
    expect(refusals).toBe(1);
  });

  it('a reply whose answer is lost is resent and stored once (idempotent client_id)', async () => {
    const h = harness();
    await h.w.boot(settings());
    h.w.show();
    await type(h, 'first');
    await waitFor(() => expect(h.fake.conversations.size).toBe(1));
    const ui = h.ui();
    await ui.findByText('first');
    h.fake.fail('POST /messages', 'lost');
    await type(h, 'second');
    await waitFor(() => expect(h.fake.callsTo('POST', '/messages')).toHaveLength(2));
    const [a, b] = h.fake.callsTo('POST', '/messages');
    expect(a!.body.client_id).toBe(b!.body.client_id);
    expect(h.fake.messagesWithClientId(a!.body.client_id)).toHaveLength(1);
    await waitFor(() => expect(ui.queryByText(/Sending|Not sent/)).toBeNull());
    expect(ui.getAllByText('second')).toHaveLength(1);
  });

  it('is resent on the online event', async () => {
    const h = harness({ deps: { backoffMs: 60_000 } });
    await h.w.boot(settings());
    h.fake.fail('POST /conversations', 'network');
    h.w.show();
    await type(h, 'hello');
    await h.ui().findByText(/Not sent/);
    window.dispatchEvent(new Event('online'));
    await waitFor(() => expect(h.fake.conversations.size).toBe(1));
    await waitFor(() => expect(h.ui().queryByText(/Not sent/)).toBeNull());
  });

  it('is resent when the stream reconnects', async () => {
    const h = harness({ deps: { backoffMs: 60_000 } });
    await h.w.boot(settings());
    h.fake.fail('POST /conversations', 'network');
    h.w.show();
    await type(h, 'hello');
    await h.ui().findByText(/Not sent/);
    h.streams.current().open();
    await waitFor(() => expect(h.fake.conversations.size).toBe(1));
  });

  it('messages typed before the conversation exists wait for it and keep their order', async () => {
    const h = harness({ deps: { backoffMs: 60_000 } });
    await h.w.boot(settings());
    h.fake.fail('POST /conversations', 'network', Infinity);
    h.w.show();
    await type(h, 'one');
    await h.ui().findByText(/Not sent/);
    await type(h, 'two');
    await h.ui().findByText('two');
    await waitFor(() => expect(h.ui().getAllByRole('button', { name: 'Retry' })).toHaveLength(2));
    expect(h.fake.callsTo('POST', '/messages')).toHaveLength(0);
    h.fake.heal('POST /conversations');
    h.ui().getAllByRole('button', { name: 'Retry' })[0]!.click();
    await waitFor(() => {
      const conv = [...h.fake.conversations.values()][0];
      expect(conv?.messages.map((m) => m.body)).toEqual(['one', 'two']);
    });
  });
});
