import { fireEvent, waitFor } from '@testing-library/preact';
import { describe, expect, it } from 'vitest';
import { createOutbox, type OutboxItem } from '../../widget/outbox.ts';
import { fallbackKV, idbKV, memoryKV, type KV } from '../../widget/storage.ts';
import { platformTimers } from '../../widget/env.ts';
import type { Result } from '../../widget/types.ts';
import { harness, settings, type Harness } from './setup.ts';

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
