/**
 * "Last seen" times, coalesced: every ping touches its contact, and writing that at once would
 * make each ping a write transaction of its own. Touches are kept in memory and written together
 * every few seconds (and on close); losing a few seconds of last-seen on a crash is harmless.
 */
import type { Db } from '../storage/contacts.ts';
import { transaction } from '../storage/transactions.ts';

export interface LastSeen {
  touch(contactId: string, at: string): void;
  flush(): Promise<void>;
  stop(): Promise<void>;
}

export function createLastSeen(db: Db, flushMs: number, onError: (e: unknown) => void): LastSeen {
  let pending = new Map<string, string>();
  const flush = async () => {
    if (pending.size === 0) return;
    const batch = pending;
    pending = new Map();
    await transaction(db, async (trx) => {
      for (const [id, at] of batch) await trx.updateTable('contacts').set({ last_seen_at: at }).where('id', '=', id).execute();
    });
  };
  const timer = setInterval(() => void flush().catch(onError), flushMs);
  timer.unref();
  return {
    touch(contactId, at) {
      pending.set(contactId, at);
    },
    flush,
    async stop() {
      clearInterval(timer);
      await flush();
    },
  };
}
