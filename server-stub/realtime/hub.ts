/**
 * In-process fan-out of live events to open streams, keyed by contact id. When a lead is merged,
 * its open streams are told (`merge`) and then follow the user, so a widget keeps receiving
 * replies without reconnecting.
 */

export type LiveEventName = 'message' | 'merge' | 'unread';

export interface LiveEvent {
  event: LiveEventName;
  data: unknown;
}

export type Listener = (e: LiveEvent) => void;

export interface Hub {
  subscribe(contactId: string, listener: Listener): () => void;
  publish(contactId: string, e: LiveEvent): void;
  /** Moves every listener of `fromId` to `intoId` (after a merge). */
  follow(fromId: string, intoId: string): void;
  /** Number of open listeners (for tests and health). */
  size(): number;
}

export function createHub(): Hub {
  const channels = new Map<string, Map<symbol, Listener>>();
  const where = new Map<symbol, string>();
  const channel = (id: string) => {
    let c = channels.get(id);
    if (!c) channels.set(id, (c = new Map()));
    return c;
  };
  return {
    subscribe(contactId, listener) {
      const key = Symbol('listener');
      channel(contactId).set(key, listener);
      where.set(key, contactId);
      return () => {
        const id = where.get(key);
        if (id === undefined) return;
        where.delete(key);
        const c = channels.get(id);
        c?.delete(key);
        if (c && c.size === 0) channels.delete(id);
      };
    },
    publish(contactId, e) {
      for (const listener of [...(channels.get(contactId)?.values() ?? [])]) listener(e);
    },
    follow(fromId, intoId) {
      const from = channels.get(fromId);
      if (!from) return;
      channels.delete(fromId);
      const into = channel(intoId);
      for (const [key, listener] of from) {
        into.set(key, listener);
        where.set(key, intoId);
      }
    },
    size() {
      return where.size;
    },
  };
}
