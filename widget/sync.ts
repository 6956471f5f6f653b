import type { Api } from './api.ts';
import { withMessages, type Store } from './store.ts';
import { openStream, type EventSourceFactory, type Timers } from './stream.ts';
import type { ApiError, ConversationSummary, Message, Result } from './types.ts';

export interface SyncDeps {
  api: Api;
  store: Store;
  visitor(): string;
  report(e: ApiError): void;
  /** Server data the widget cannot use: a console line for developers, not a banner. */
  warn(e: ApiError): void;
  timers: Timers;
  factory: EventSourceFactory | null;
  delay(attempt: number): number;
  pollMs: number;
  /** The stream (re)connected: a good moment to resend the outbox. */
  onUp(): void;
  /**
   * The server merged this visitor into a user. `follow`: by cookie (R2), this browser now opens
   * the user; otherwise (R6) the cookie was unbound and opens nobody until the next ping.
   */
  onMerge(follow: boolean): void;
}

const byUpdated = (a: ConversationSummary, b: ConversationSummary) => (a.updated_at < b.updated_at ? 1 : -1);
const isAgent = (m: Message) => m.author.type === 'agent';

/**
 * Keeps conversations and loaded threads in step with the server: the live stream while it is
 * up, catch-up with `after=` whenever it comes back, polling while it is down.
 */
export function createSync(d: SyncDeps) {
  const { api, store } = d;
  let close: (() => void) | undefined;
  let openUrl: string | undefined;
  let poll: unknown;
  let polling = false;
  let alive = true;
  /** Bumped by `reset`: answers asked for before it belong to a visitor this cookie no longer is. */
  let epoch = 0;

  const viewing = (id: string) => store.get().open && store.get().thread === id;

  function announce(ms: Message[]): void {
    const m = ms.filter(isAgent).pop();
    if (m) store.set({ announce: `New message: ${m.body}` });
  }

  /** A call for the current visitor: its value, or undefined when it failed (reported) or a reset came meanwhile. */
  async function call<T>(f: () => Promise<Result<T>>): Promise<{ v: T } | undefined> {
    if (!alive) return;
    const e = epoch;
    const r = await f();
    if (e !== epoch) return;
    if (r.ok) return { v: r.value };
    d.report(r.error);
  }

  async function conversations(): Promise<void> {
    const r = await call(() => api.conversations(d.visitor()));
    if (!r) return;
    const list = r.v.data.slice().sort(byUpdated);
    store.set({ conversations: list, unread: list.reduce((n, c) => n + c.unread_count, 0) });
  }

  /** Loads a thread, or only what is newer than its last known message. */
  async function thread(id: string, after = store.get().messages[id]?.slice(-1)[0]?.id): Promise<void> {
    const r = await call(() => api.messages(id, d.visitor(), after));
    if (!r) return;
    const fresh = r.v.data;
    store.set((s) => withMessages(s, id, fresh));
    if (after) announce(fresh);
    if (viewing(id) && fresh.some(isAgent)) await read(id);
  }

  async function read(id: string): Promise<void> {
    if (!(await call(() => api.read(id, d.visitor())))) return;
    store.set((s) => {
      const c = s.conversations.find((x) => x.id === id);
      return {
        conversations: s.conversations.map((x) => (x.id === id ? { ...x, unread_count: 0 } : x)),
        unread: Math.max(0, s.unread - (c?.unread_count ?? 0)),
      };
    });
  }

  async function catchUp(): Promise<void> {
    // Each thread's last id before any await: a message pushed on the new stream meanwhile must not
    // become `after=`, or what was sent while the stream was down would be skipped.
    const last = store.get().messages;
    await conversations();
    await Promise.all(Object.keys(store.get().messages).map((id) => thread(id, last[id]?.slice(-1)[0]?.id)));
  }

  function onEvent(type: string, data: unknown): void {
    if (type === 'merge') {
      const follow = (data as { trigger?: unknown } | null)?.trigger === 'cookie';
      d.onMerge(follow);
      if (follow) void catchUp();
      return;
    }
    if (type === 'unread') {
      const n = typeof data === 'number' ? data : (data as { unread_count?: unknown }).unread_count;
      if (typeof n === 'number') store.set({ unread: n });
      return;
    }
    const m = data as Message;
    const id = m.conversation_id;
    if (!id || typeof m.body !== 'string') return;
    const s = store.get();
    const known = s.conversations.find((c) => c.id === id);
    if (!known) void conversations();
    // Only add to a thread already loaded: adding to an unloaded one would hide its history from `after=`.
    if (s.messages[id]) store.set((x) => withMessages(x, id, [m]));
    if (!isAgent(m)) return;
    announce([m]);
    if (viewing(id) && s.messages[id]) return void read(id);
    store.set((x) => ({
      unread: x.unread + 1,
      conversations: x.conversations.map((c) =>
        c.id === id ? { ...c, last_message: m, updated_at: m.created_at, unread_count: c.unread_count + 1 } : c,
      ),
    }));
  }

  function stopPoll(): void {
    polling = false;
    d.timers.clearTimeout(poll);
  }
  function startPoll(): void {
    if (polling) return;
    polling = true;
    const tick = (): void => {
      if (polling) poll = d.timers.setTimeout(() => void catchUp().then(tick), d.pollMs);
    };
    tick();
  }

  return {
    conversations,
    thread,
    read,
    catchUp,
    onEvent,
    /** Opens the stream for the current visitor, unless it is already open for them. */
    start(): void {
      if (!alive) return;
      const url = api.streamUrl(d.visitor());
      if (close && url === openUrl) return;
      this.stop();
      openUrl = url;
      close = openStream({
        url,
        factory: d.factory,
        events: ['message', 'merge', 'unread'],
        onEvent,
        onUp: () => {
          stopPoll();
          d.onUp();
          void catchUp();
        },
        onDown: startPoll,
        onBadEvent: (e) => d.warn({ status: 0, type: 'about:blank', title: 'Bad stream event', detail: String(e) }),
        timers: d.timers,
        delay: d.delay,
      });
    },
    stop(): void {
      close?.();
      close = undefined;
      stopPoll();
    },
    /**
     * Forgets the conversations of a visitor this cookie no longer is (R8 reset, a merge not by
     * cookie): the view, the stream and answers under way. `start` follows the next visitor.
     */
    reset(thread: string | null = null): void {
      epoch++;
      this.stop();
      store.set({ conversations: [], messages: {}, thread, contact: null, unread: 0 });
    },
    /** Stops for good (shutdown): late answers and timers do nothing more. */
    dispose(): void {
      alive = false;
      epoch++;
      this.stop();
    },
  };
}

export type Sync = ReturnType<typeof createSync>;
