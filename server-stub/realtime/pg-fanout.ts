/**
 * Live events across server instances on one PostgreSQL database: every publish is also sent with
 * NOTIFY, and each instance LISTENs and hands what others sent to its own open streams. A reply
 * posted through instance A so reaches a widget whose stream is held by instance B.
 */
import { randomUUID } from 'node:crypto';
import type { Pool, PoolClient } from 'pg';
import type { Hub, LiveEvent } from './hub.ts';

const CHANNEL = 'parley_live';
// NOTIFY payloads are limited to 8000 bytes; larger events travel as a reference to reload.
const MAX_PAYLOAD = 7000;

type Note =
  | { origin: string; kind: 'publish'; contactId: string; event: LiveEvent }
  | { origin: string; kind: 'publish-message-ref'; contactId: string; messageId: string }
  | { origin: string; kind: 'follow'; from: string; into: string };

export interface FanoutHub extends Hub {
  close(): Promise<void>;
}

/**
 * Wraps a local hub. `loadMessage` reloads a message too large for a NOTIFY payload.
 */
export async function createPgFanout(local: Hub, pool: Pool, loadMessage: (id: string) => Promise<unknown>, onError: (e: unknown) => void): Promise<FanoutHub> {
  const origin = randomUUID();
  const listener: PoolClient = await pool.connect();
  listener.on('notification', (msg) => {
    if (msg.channel !== CHANNEL || !msg.payload) return;
    const note = JSON.parse(msg.payload) as Note;
    if (note.origin === origin) return;
    if (note.kind === 'publish') local.publish(note.contactId, note.event);
    else if (note.kind === 'follow') local.follow(note.from, note.into);
    else loadMessage(note.messageId).then((data) => local.publish(note.contactId, { event: 'message', data }), onError);
  });
  listener.on('error', onError);
  await listener.query(`listen ${CHANNEL}`);

  const notify = (note: Note) => {
    pool.query('select pg_notify($1, $2)', [CHANNEL, JSON.stringify(note)]).catch(onError);
  };

  return {
    subscribe: (id, fn) => local.subscribe(id, fn),
    size: () => local.size(),
    publish(contactId, event) {
      local.publish(contactId, event);
      const note: Note = { origin, kind: 'publish', contactId, event };
      const payload = JSON.stringify(note);
      const ref = event.event === 'message' ? (event.data as { id?: string }).id : undefined;
      if (Buffer.byteLength(payload) <= MAX_PAYLOAD) notify(note);
      else if (ref) notify({ origin, kind: 'publish-message-ref', contactId, messageId: ref });
      else onError(new Error(`live event too large to fan out: ${event.event}`));
    },
    follow(from, into) {
      local.follow(from, into);
      notify({ origin, kind: 'follow', from, into });
    },
    async close() {
      await listener.query(`unlisten ${CHANNEL}`).catch(onError);
      listener.release();
    },
  };
}
