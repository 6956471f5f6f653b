// The one guarded door to browser globals. Everything else asks here, so the widget loads in any
// page (and in node tests) without touching `window` at import time.

const g = globalThis as typeof globalThis & { window?: Window; document?: Document };

export const getWindow = (): Window | undefined => (typeof g.window === 'object' ? g.window : undefined);
export const getDocument = (): Document | undefined =>
  typeof g.document === 'object' ? g.document : undefined;
export const getCrypto = (): Crypto | undefined => g.crypto;
export const isHttps = (): boolean => getWindow()?.location.protocol === 'https:';
export const pageOrigin = (): string => getWindow()?.location.origin ?? '';
export const currentUrl = (): string => getWindow()?.location.href ?? '';

/** The platform fetch, bound so it can be called detached. */
export const platformFetch = (): typeof fetch => g.fetch.bind(g);

/** Adds a window listener; returns the function that removes it. */
export function onWindow(type: string, fn: () => void): () => void {
  const w = getWindow();
  w?.addEventListener(type, fn);
  return () => w?.removeEventListener(type, fn);
}

const urlWatchers = new Set<() => void>();
let patched = false;

/**
 * Calls `fn` after every single-page-app URL change (history pushState/replaceState, popstate).
 * History is patched once per page and never unpatched, so patches by several widgets or by the
 * host cannot be restored in the wrong order; the returned function only removes `fn`.
 */
export function watchUrl(fn: () => void): () => void {
  const w = getWindow();
  if (!w) return () => {};
  if (!patched) {
    patched = true;
    const h = w.history;
    const notify = () => urlWatchers.forEach((f) => f());
    for (const k of ['pushState', 'replaceState'] as const) {
      const orig = h[k];
      h[k] = function (this: History, ...a: Parameters<History['pushState']>) {
        orig.apply(this, a);
        notify();
      };
    }
    w.addEventListener('popstate', notify);
  }
  urlWatchers.add(fn);
  return () => void urlWatchers.delete(fn);
}

/** The platform EventSource as a factory, or null where there is none (then the widget polls). */
export const platformEventSource = (): ((url: string) => EventSource) | null =>
  typeof g.EventSource === 'function' ? (url) => new g.EventSource(url) : null;

/** Real timers, detached from `window` so tests and workers can call them. */
export const platformTimers = {
  setTimeout: (fn: () => void, ms: number): unknown => g.setTimeout(fn, ms),
  clearTimeout: (t: unknown): void => g.clearTimeout(t as number),
};

export const randomUnit = (): number => Math.random();

/**
 * A signal between this origin's tabs: BroadcastChannel, else a localStorage `storage` event.
 * `fn` runs when another tab posts; returns [post, off].
 */
export function tabSignal(name: string, fn: () => void): [() => void, () => void] {
  if (g.BroadcastChannel) {
    const c = new g.BroadcastChannel(name);
    c.onmessage = fn;
    return [() => c.postMessage(1), () => c.close()];
  }
  const w = getWindow();
  const on = (e: StorageEvent) => e.key === name && e.newValue && fn();
  w?.addEventListener('storage', on);
  const post = () => {
    try {
      w?.localStorage.setItem(name, '' + Math.random());
      w?.localStorage.removeItem(name);
    } catch {
      // Storage blocked: the other tabs notice the missing cookie on their next ping instead.
    }
  };
  return [post, () => w?.removeEventListener('storage', on)];
}
