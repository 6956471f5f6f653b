import { transient } from './api.ts';
import type { KV } from './storage.ts';
import type { Timers } from './stream.ts';
import type { ApiError, Contact, Message, Result, UserClaim } from './types.ts';

const CONFLICT = /client-id-conflict$/;

/** A message typed by the visitor and not yet confirmed by the server. */
export interface OutboxItem {
  client_id: string;
  visitor_id: string;
  body: string;
  created_at: string;
  /** Null until the conversation exists on the server. */
  conversation_id: string | null;
  /** For a follow-up typed before its conversation started: the starting item's client_id. */
  start_id?: string;
  /** Sent with a conversation start (rule R14 claims travel with every call that has a user). */
  user?: UserClaim;
  status: 'sending' | 'failed';
  error?: string;
  /**
   * Refused for good (a 4xx other than 408, 409, 429: sending it again cannot help): shown with
   * `error`, sent again only by Retry, or discarded by the visitor.
   */
  refused?: boolean;
}

/** The conversation an item belongs to, or its local key while the conversation is not started. */
export const threadKey = (i: OutboxItem): string => i.conversation_id ?? i.start_id ?? i.client_id;

export interface Delivered {
  conversation_id: string;
  message: Message;
  /** Sent back when the message started a conversation: the visitor is now a lead (R1). */
  contact?: Contact;
}

export interface OutboxDeps {
  kv: KV;
  key: string;
  send(item: OutboxItem): Promise<Result<Delivered>>;
  timers: Timers;
  delay(attempt: number): number;
  onChange(items: OutboxItem[]): void;
  onDelivered(item: OutboxItem, d: Delivered): void;
  onError(e: ApiError): void;
}

export interface Outbox {
  /** Loads items saved by an earlier page and sends them (not the refused ones: they wait for Retry). */
  load(): Promise<void>;
  /** Saves the item, then sends it. Resolves once it is saved. */
  add(item: Omit<OutboxItem, 'status'>): Promise<void>;
  /** Sends everything waiting, in order (except what was refused for good). */
  flush(): Promise<void>;
  /** Sends one failed item again now. */
  retry(clientId: string): Promise<void>;
  /** The visitor gives up on a failed item: it goes; what waited for it starts a conversation. */
  discard(clientId: string): Promise<void>;
  /**
   * The visitor lost its conversations (a merge not by cookie moved them to a user, R6): what
   * waits for one of them starts a new conversation instead. Sends nothing by itself.
   */
  restart(): Promise<void>;
  /** Empties this tab's list; storage too unless `keep` (another tab did it), or, given a visitor id, only that visitor's stored items. */
  clear(keep?: boolean | string): Promise<void>;
  items(): OutboxItem[];
}

/**
 * The outbox: every message is stored before it is sent and stays until the server confirms it.
 * Sending the same item twice is harmless because the server is idempotent on `client_id`.
 */
export function createOutbox(d: OutboxDeps): Outbox {
  let items: OutboxItem[] = [];
  let running: Promise<void> = Promise.resolve();
  /** True while `run` is going. Cleared in the same tick as its last look at `again`. */
  let active = false;
  let again = false;
  let attempt = 0;
  let timer: unknown;
  let gen = 0;

  /** Delivered here: never written back, even if another tab still lists them. */
  const done = new Set<string>();
  // Other tabs share the stored list: keep their items, replace ours (read-modify-write).
  // A `clear()` (shutdown) during an await ends the job: nothing of the old visitor is written back.
  const save = async (): Promise<void> => {
    const my = gen;
    d.onChange(items);
    const mine = new Set(items.map((i) => i.client_id));
    const stored = (await d.kv.get<OutboxItem[]>(d.key)) ?? [];
    if (my !== gen) return;
    await d.kv.set(d.key, [...stored.filter((i) => !mine.has(i.client_id) && !done.has(i.client_id)), ...items]);
  };
  const patch = (id: string, p: Partial<OutboxItem>): void => {
    items = items.map((i) => (i.client_id === id ? { ...i, ...p } : i));
  };
  /**
   * The items of thread `key` start a new conversation: the first one starts it, the others follow
   * it. Each keeps its client_id, so a message the server stored already is not stored twice.
   */
  const regroup = (key: string): void => {
    let first: string | undefined;
    items = items.map((i) =>
      threadKey(i) !== key ? i : { ...i, conversation_id: null, start_id: first ?? ((first = i.client_id), undefined) },
    );
  };
  /** Gone for good, here and in storage; what waited for it starts a conversation of its own. */
  const drop = (id: string): void => {
    done.add(id);
    items = items.filter((i) => i.client_id !== id);
    regroup(id);
  };

  async function run(): Promise<void> {
    const my = gen;
    try {
      do {
        again = false;
        for (const { client_id } of items.slice()) {
          const item = items.find((i) => i.client_id === client_id);
          if (my !== gen) return;
          // Gone, refused (waits for Retry), or waits for its conversation.
          if (!item || item.refused || (!item.conversation_id && item.start_id)) continue;
          patch(client_id, { status: 'sending' });
          d.onChange(items);
          const r = await d.send(item);
          if (my !== gen) return;
          if (r.ok) {
            attempt = 0;
            done.add(client_id);
            items = items
              .filter((i) => i.client_id !== client_id)
              .map((i) => (i.start_id === client_id ? { ...i, conversation_id: r.value.conversation_id } : i));
            await save();
            d.onDelivered(item, r.value);
          } else if ((item.conversation_id && r.error.status === 404) || CONFLICT.test(r.error.type)) {
            // Not a failure to show. 404: the conversation is out of reach (merged into a user, R6),
            // so the message starts a new one. A client_id conflict: the server stored this message
            // already (its answer was lost) where the visitor can no longer see it: exactly once is
            // done; what waited for it starts a conversation of its own.
            if (r.error.status === 404) regroup(item.conversation_id!);
            else drop(client_id);
            again = true;
            await save();
          } else {
            const t = transient(r.error);
            patch(client_id, { status: 'failed', error: r.error.title, refused: !t && r.error.status > 399 && r.error.status !== 409 });
            d.onError(r.error);
            if (t) {
              // The network is down: everything waits for the next attempt.
              items = items.map((i) => ({ ...i, status: 'failed' }));
              await save();
              d.timers.clearTimeout(timer);
              timer = d.timers.setTimeout(() => void flush(), d.delay(attempt++));
              break; // unless someone asked again meanwhile (e.g. `online`), wait for the timer
            }
            await save();
          }
        }
      } while (again);
    } finally {
      active = false; // synchronously with the last look at `again`: no flush can fall in between
    }
  }

  function flush(): Promise<void> {
    if (active) {
      again = true;
      return running;
    }
    active = true;
    running = run();
    return running;
  }

  return {
    async load() {
      const my = gen;
      const saved = (await d.kv.get<OutboxItem[]>(d.key)) ?? [];
      if (my !== gen) return; // shut down while reading: the saved items belong to the old visitor
      const known = new Set(items.map((i) => i.client_id));
      items = [...saved.filter((i) => !known.has(i.client_id)), ...items];
      d.onChange(items);
      await flush();
    },
    async add(item) {
      items = [...items, { ...item, status: 'sending' }];
      await save();
      void flush();
    },
    flush,
    retry(id) {
      attempt = 0;
      patch(id, { status: 'sending', refused: false });
      d.onChange(items);
      return flush();
    },
    discard(id) {
      drop(id);
      return save().then(flush);
    },
    restart() {
      for (const k of new Set(items.map((i) => i.conversation_id))) if (k) regroup(k);
      return save();
    },
    async clear(keep) {
      gen++;
      d.timers.clearTimeout(timer);
      items = [];
      d.onChange(items);
      if (typeof keep == 'string') await d.kv.set(d.key, ((await d.kv.get<OutboxItem[]>(d.key)) ?? []).filter((i) => i.visitor_id != keep));
      else if (!keep) await d.kv.del(d.key);
    },
    items: () => items,
  };
}
