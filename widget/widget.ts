import { createActions } from './actions.ts';
import { createApi } from './api.ts';
import { backoffDelay } from './backoff.ts';
import {
  getDocument,
  isHttps,
  onWindow,
  pageOrigin,
  platformEventSource,
  platformFetch,
  platformTimers,
  randomUnit,
  tabSignal,
  watchUrl,
} from './env.ts';
import { createIdentity } from './identity.ts';
import { uuid } from './ids.ts';
import { createOutbox, threadKey, type Delivered, type OutboxItem } from './outbox.ts';
import { createSession } from './session.ts';
import { fallbackKV, idbKV, memoryKV, type KV } from './storage.ts';
import { createStore, withMessages } from './store.ts';
import type { EventSourceFactory, Timers } from './stream.ts';
import { createSync } from './sync.ts';
import type { ApiError, Result, Settings, UpdateData } from './types.ts';
import { mount } from './ui/mount.tsx';

/** Outcome of a public call that talks to the server. */
export type Outcome = { ok: true } | { ok: false; error: ApiError };

/** The public API, the same for the script tag (`Parley('boot', …)`) and the ES module. */
export interface Parley {
  boot(settings: Settings): Promise<Outcome>;
  update(data?: UpdateData): Promise<Outcome>;
  shutdown(): Promise<Outcome>;
  show(): void;
  hide(): void;
  showNewMessage(text?: string): void;
  trackEvent(name: string, metadata?: Record<string, unknown>): Promise<Outcome>;
  onUnreadCountChange(fn: (count: number) => void): () => void;
  onShow(fn: () => void): () => void;
  onHide(fn: () => void): () => void;
  getVisitorId(): string | null;
}

/** What varies between the browser and a test. Everything is optional. */
export interface WidgetDeps {
  fetch?: typeof fetch;
  eventSource?: EventSourceFactory | null;
  kv?: KV;
  now?: () => number;
  timers?: Timers;
  newId?: () => string;
  random?: () => number;
  /** Minimum time between throttled pings (URL changes, updates), ms. */
  throttleMs?: number;
  /** Polling period while the stream is down, ms. */
  pollMs?: number;
  /** Backoff base, ms. */
  backoffMs?: number;
  /** Render the UI (default: when there is a document). */
  ui?: boolean;
  /** Where failures go besides the banner (default: console.warn). */
  onError?: (e: ApiError) => void;
}

const problem = (title: string, detail = ''): ApiError => ({ status: 0, type: 'about:blank', title, detail });
const outcome = (r: Result<unknown>): Outcome => (r.ok ? { ok: true } : r);
const NOT_BOOTED: Outcome = { ok: false, error: problem('Parley is not booted', 'Call boot first') };

const OFFLINE = "Can't reach the chat right now. We'll keep trying.";

function bannerText(e: ApiError): string {
  if (e.status === 0) return OFFLINE;
  if (e.status === 401) return 'Could not verify your identity.';
  if (e.status === 403) return 'Chat is not enabled for this site.';
  if (e.status === 429) return 'Too many requests. Trying again soon.';
  return `Something went wrong: ${e.title}`;
}

/** Builds one widget instance. `index.ts` makes the page's default one. */
export function createWidget(deps: WidgetDeps = {}): Parley {
  const subs = { unread: new Set<(n: number) => void>(), show: new Set<() => void>(), hide: new Set<() => void>() };
  const listen =
    <F>(set: Set<F>) =>
    (fn: F): (() => void) => {
      set.add(fn);
      return () => void set.delete(fn);
    };
  const warn = deps.onError ?? ((e: ApiError) => console.warn('[parley]', e.title, e.detail));

  let live: ReturnType<typeof start> | undefined;

  // Each boot gets its own store: late answers for a shut-down visitor land in a store nobody reads.
  function start(settings: Settings) {
    const store = createStore();
    let prev = store.get();
    const unsubscribe = store.subscribe((s) => {
      const p = prev;
      prev = s;
      if (s.unread !== p.unread) subs.unread.forEach((f) => f(s.unread));
      if (s.open !== p.open) (s.open ? subs.show : subs.hide).forEach((f) => f());
    });
    const report = (e: ApiError): void => {
      store.set({ banner: bannerText(e) });
      warn(e);
    };
    const now = deps.now ?? Date.now;
    const timers = deps.timers ?? platformTimers;
    const newId = deps.newId ?? (() => uuid());
    const random = deps.random ?? randomUnit;
    const delay = (n: number) => backoffDelay(n, random(), deps.backoffMs ?? 1000);
    const appId = settings.app_id;
    // R15 across tabs: a cookie deleted elsewhere is a logout here too (never written back). So is
    // one replaced while this tab has a user: its claim must never travel with the next visitor's
    // id (R2 would merge them). The new cookie stays; an anonymous tab adopts it.
    const identity = createIdentity({
      appId,
      domain: settings.cookie_domain,
      secure: isHttps(),
      newId,
      gone: (next) => (next && !session.user() ? 0 : down(true, next)), // truthy: this tab stops
    });
    const http = createApi(deps.fetch ?? platformFetch(), settings.api_base ?? pageOrigin(), appId);
    const kv = deps.kv ?? fallbackKV(idbKV(), memoryKV(), (e) => warn(problem('Local storage unavailable', String(e))));
    const visitor = () => identity.get();

    const send = async (i: OutboxItem): Promise<Result<Delivered>> => {
      const b = { visitor_id: i.visitor_id, body: i.body, client_id: i.client_id };
      if (i.conversation_id) {
        const r = await http.send(i.conversation_id, b);
        return r.ok ? { ok: true, value: { conversation_id: i.conversation_id, message: r.value } } : r;
      }
      const r = await http.start({ ...b, ...(i.user ? { user: i.user } : {}) });
      if (!r.ok) return r;
      const { conversation, message, contact } = r.value;
      return { ok: true, value: { conversation_id: conversation.id, message, contact } };
    };

    const outbox = createOutbox({
      kv,
      key: 'outbox:' + appId,
      send,
      timers,
      delay,
      onChange: (items) => store.set({ outbox: items }),
      onError: report,
      onDelivered(item, { conversation_id: id, message, contact }) {
        store.set((s) => ({
          ...(!item.conversation_id || s.messages[id] ? withMessages(s, id, [message]) : {}),
          ...(s.thread === item.client_id ? { thread: id } : {}),
          ...(contact ? { contact } : {}),
          banner: null,
        }));
        if (!item.conversation_id) void sync.conversations();
      },
    });

    const sync = createSync({
      api: http,
      store,
      visitor,
      report,
      warn,
      timers,
      factory: deps.eventSource === undefined ? platformEventSource() : deps.eventSource,
      delay,
      pollMs: deps.pollMs ?? 10_000,
      onUp() {
        store.set((s) => (s.banner === OFFLINE ? { banner: null } : {}));
        void outbox.flush();
      },
      onMerge(follow) {
        if (follow) return void session.ping();
        // Not by cookie (R6): the lead's conversations are the user's now and this cookie opens
        // nobody; the server makes it a new visitor on the next ping. Like the R8 reset, with the
        // same id. Messages waiting for an old conversation start a new one; a visitor looking at
        // one is shown where its waiting messages go, or the list.
        const t = store.get().thread;
        const first = outbox.items().find((i) => threadKey(i) === t);
        void outbox.restart();
        sync.reset(t === 'new' || (first && !first.conversation_id) ? t : (first?.client_id ?? null));
        void session.ping().then(() => (sync.start(), outbox.flush()));
      },
    });

    const session = createSession(
      {
        api: http,
        identity,
        store,
        timers,
        now,
        throttleMs: deps.throttleMs ?? 2000,
        report,
        warn,
        onReset() {
          // The old visitor's view goes; the stream follows the new one after its first ping.
          sync.reset();
        },
        onIdentity() {
          sync.start();
          void sync.catchUp();
        },
      },
      settings,
    );

    const actions = createActions({ store, outbox, sync, session, visitor, newId, now });
    store.set({ color: settings.color });
    const doc = getDocument();
    // A logout in another tab of this origin shuts this one down; that tab did the cleaning.
    const [tell, untell] = tabSignal('parley_' + appId, () => void down());
    const off = [
      untell,
      watchUrl(() => session.schedule()),
      onWindow('online', () => {
        session.schedule();
        void outbox.flush().then(sync.catchUp);
      }),
      ...(deps.ui !== false && doc ? [mount(doc, store, actions)] : []),
    ];
    identity.touch();
    // The stream opens after the first ping: the server only streams to visitors it knows.
    const ready = session.ping().then((r) => (sync.start(), r));
    void outbox.load();
    return { store, unsubscribe, identity, http, session, sync, outbox, actions, off, ready, tell };
  }

  /**
   * Logout (R15). `mine`: this tab's logout — tell the other tabs, delete the cookie (unless it
   * holds another visitor now) and stored data, log out on the server. Otherwise another tab did
   * all that (and may already have booted a new visitor, whose cookie must stay): only stop here.
   * `replaced`: the cookie holds another visitor, perhaps of a tab here that switched users (R8):
   * the other tabs are not told; each finds out by itself.
   */
  async function down(mine?: boolean, replaced?: string): Promise<Outcome> {
    const l = live;
    if (!l) return { ok: true };
    live = undefined;
    // Everything synchronous first: `shutdown(); boot()` in a row must meet a clean slate.
    const old = l.identity.get();
    if (mine && !replaced) l.tell(); // before `off` closes the channel
    l.off.forEach((f) => f());
    l.sync.dispose();
    l.session.stop();
    // A logout deletes the cookie whoever it holds now (R15); a replaced one is another visitor's.
    if (mine) l.identity.clear(!!replaced);
    l.store.set({ open: false, unread: 0 });
    l.unsubscribe();
    // Replaced: storage is shared with the tabs here, perhaps one that switched users: only this
    // visitor's waiting messages go.
    await l.outbox.clear(replaced ? old : !mine);
    if (!mine) return { ok: true };
    // Best effort: the server unbinds the old visitor id. Locally everything is gone already.
    const r = await l.http.logout(old);
    if (!r.ok) warn(r.error);
    return outcome(r);
  }

  const api: Parley = {
    async boot(settings) {
      if (live) return api.update(settings);
      if (!settings || typeof settings.app_id !== 'string' || !settings.app_id) {
        const e = problem('Parley boot needs an app_id');
        warn(e);
        return { ok: false, error: e };
      }
      live = start(settings);
      return outcome(await live.ready);
    },
    async update(data = {}) {
      const l = live;
      if (!l) return NOT_BOOTED;
      await l.ready;
      if (live !== l) return NOT_BOOTED;
      if (typeof data.color === 'string') l.store.set({ color: data.color });
      const r = l.session.update(data);
      return r ? outcome(await r) : { ok: true };
    },
    shutdown: () => down(true),
    show: () => live?.actions.show(),
    hide: () => live?.actions.hide(),
    showNewMessage(text = '') {
      live?.store.set({ open: true, thread: 'new', draft: text });
    },
    async trackEvent(name, metadata) {
      const l = live;
      if (!l) return NOT_BOOTED;
      await l.ready;
      if (live !== l) return NOT_BOOTED;
      const r = await l.http.event({
        visitor_id: l.identity.get(),
        name,
        ...(metadata ? { metadata } : {}),
        occurred_at: new Date((deps.now ?? Date.now)()).toISOString(),
      });
      if (!r.ok) warn(r.error);
      return outcome(r);
    },
    onUnreadCountChange: listen(subs.unread),
    onShow: listen(subs.show),
    onHide: listen(subs.hide),
    getVisitorId: () => live?.identity.get() ?? null,
  };
  return api;
}
