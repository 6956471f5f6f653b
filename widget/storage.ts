import { createStore, get, set, del } from 'idb-keyval';

/** The key-value port: three methods, swappable implementations. */
export interface KV {
  get<T>(key: string): Promise<T | undefined>;
  set(key: string, value: unknown): Promise<void>;
  del(key: string): Promise<void>;
}

/** In-memory store: for tests and for browsers without IndexedDB (private modes). */
export function memoryKV(): KV {
  const m = new Map<string, unknown>();
  return {
    get: async <T>(k: string) => m.get(k) as T | undefined,
    // A copy, as IndexedDB keeps (JSON: structuredClone is missing before Safari 15.4).
    set: async (k, v) => void m.set(k, JSON.parse(JSON.stringify(v))),
    del: async (k) => void m.delete(k),
  };
}

/** IndexedDB through idb-keyval, in its own database so `shutdown` can wipe it without collateral. */
export function idbKV(): KV {
  // Opened lazily: where IndexedDB is missing, the first call fails and `fallbackKV` takes over.
  let store: ReturnType<typeof createStore> | undefined;
  const s = () => (store ??= createStore('parley', 'kv'));
  return {
    get: async (k) => get(k, s()),
    set: async (k, v) => set(k, v, s()),
    del: async (k) => del(k, s()),
  };
}

/**
 * Uses `primary` until it fails once, then `fallback` for the rest of the page's life, reporting
 * the failure (data then lives only as long as the page).
 */
export function fallbackKV(primary: KV, fallback: KV, report: (e: unknown) => void): KV {
  let kv = primary;
  const run =
    <A extends unknown[], R>(f: (s: KV, ...a: A) => Promise<R>) =>
    async (...a: A): Promise<R> => {
      if (kv === fallback) return f(fallback, ...a);
      try {
        return await f(kv, ...a);
      } catch (e) {
        report(e);
        kv = fallback;
        return f(fallback, ...a);
      }
    };
  return {
    get: run((s, k: string) => s.get(k)) as KV['get'],
    set: run((s, k: string, v: unknown) => s.set(k, v)),
    del: run((s, k: string) => s.del(k)),
  };
}
