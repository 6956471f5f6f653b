// The bundle targets es2020 (vite.config.ts): syntax is lowered, built-ins are not polyfilled.
// Widget code must not need Array.prototype.at or structuredClone (Safari before 15.4 lacks both).
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Api } from '../../widget/api.ts';
import { platformTimers } from '../../widget/env.ts';
import { memoryKV } from '../../widget/storage.ts';
import { createStore } from '../../widget/store.ts';
import { createSync } from '../../widget/sync.ts';
import type { Message } from '../../widget/types.ts';

const at = Array.prototype.at;

/** Runs `f` as in an older browser; asserting happens after, with the built-ins back. */
async function withoutNewBuiltins<T>(f: () => Promise<T>): Promise<T> {
  vi.stubGlobal('structuredClone', undefined);
  delete (Array.prototype as { at?: unknown }).at;
  try {
    return await f();
  } finally {
    Object.defineProperty(Array.prototype, 'at', { value: at, writable: true, configurable: true });
    vi.unstubAllGlobals();
  }
}

describe('es2020 browsers (no Array.prototype.at, no structuredClone)', () => {
  afterEach(() => vi.unstubAllGlobals());

  it('the memory store keeps a copy', async () => {
    const kv = memoryKV();
    const value = [{ body: 'hi', n: 1 }];
    const got = await withoutNewBuiltins(async () => {
      await kv.set('k', value);
      value[0]!.n = 2;
      return kv.get('k');
    });
    expect(got).toEqual([{ body: 'hi', n: 1 }]);
  });

  it('threads load with after= their last message, catch up, and announce agent replies', async () => {
    const msg = (id: string, body: string): Message => ({
      id, conversation_id: 'c1', body, author: { type: 'agent', id: 'a' }, created_at: '2026-01-01T00:00:00.000Z',
    });
    const server = [msg('m1', 'one'), msg('m2', 'two'), msg('m3', 'three')];
    let shown = 1;
    const afters: (string | undefined)[] = [];
    const api = {
      conversations: async () => ({ ok: true, value: { data: [] } }),
      messages: async (_c: string, _v: string, after?: string) => {
        afters.push(after);
        const from = after ? server.findIndex((m) => m.id === after) + 1 : 0;
        return { ok: true, value: { data: server.slice(from, shown) } };
      },
      read: async () => ({ ok: true, value: null }),
      streamUrl: () => 'https://chat.example.com/stream',
    } as unknown as Api;
    const store = createStore();
    const sync = createSync({
      api, store, visitor: () => 'v', report: () => {}, warn: () => {}, timers: platformTimers,
      factory: null, delay: () => 0, pollMs: 1e9, onUp: () => {}, onMerge: () => {},
    });
    const announced: string[] = [];
    await withoutNewBuiltins(async () => {
      await sync.thread('c1');
      shown = 2;
      await sync.thread('c1');
      announced.push(store.get().announce);
      shown = 3;
      await sync.catchUp();
      announced.push(store.get().announce);
    });
    sync.dispose();
    expect(afters).toEqual([undefined, 'm1', 'm2']);
    expect(announced).toEqual(['New message: two', 'New message: three']);
    expect(store.get().messages.c1!.map((m) => m.id)).toEqual(['m1', 'm2', 'm3']);
  });
});
