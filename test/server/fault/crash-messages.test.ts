/**
 * Crash injection, message burst: a real server process on a port receives concurrent messages
 * from several visitors and is killed with SIGKILL at seeded moments, five times, then restarted
 * on the same database. After every kill the file passes `PRAGMA integrity_check` and every message
 * acknowledged with 201 is stored once, with its body. Messages whose answer never came are sent
 * again with the same client_id after the restart (as the widget's outbox does) and are then stored
 * exactly once.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createRng } from '../../support/prng.ts';
import { SERVER_SCRIPT, inspect, integrityCheck, kill, run, sleep, type Running } from '../../support/crash-harness.ts';

const SEED = 0x3e55_0003;
const KILLS = 5;
const VISITORS = 4;
const CONCURRENCY = 6;

const dir = mkdtempSync(join(tmpdir(), 'parley-crash-messages-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Server {
  p: Running;
  url: string;
  appId: string;
}

async function startServerProcess(dbPath: string): Promise<Server> {
  const p = run([SERVER_SCRIPT, dbPath], { tsx: true });
  const deadline = Date.now() + 30_000;
  while (!p.stdout().includes('\n')) {
    if (Date.now() > deadline || p.child.exitCode !== null) throw new Error(`server did not start: ${p.stderr()}`);
    await sleep(10);
  }
  const info = JSON.parse(p.stdout().split('\n')[0]!) as { port: number; app_id: string };
  return { p, url: `http://127.0.0.1:${info.port}`, appId: info.app_id };
}

interface Outgoing {
  visitorId: string;
  conversationId: string;
  clientId: string;
  body: string;
}

async function send(server: Server, m: Outgoing): Promise<{ status: number; body: any }> {
  const res = await fetch(`${server.url}/v1/messenger/conversations/${m.conversationId}/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ app_id: server.appId, visitor_id: m.visitorId, body: m.body, client_id: m.clientId }),
  });
  return { status: res.status, body: await res.json() };
}

describe('crash injection: message burst', () => {
  it(`${KILLS} SIGKILLs of a server under a message burst lose no acknowledged message; resends store each message once`, async () => {
    const rng = createRng(SEED);
    const dbPath = join(dir, 'messages.db');
    const acked = new Map<string, { id: string; body: string }>(); // by client_id
    let pending: Outgoing[] = [];
    let serial = 0;

    let server = await startServerProcess(dbPath);
    const visitors: { visitorId: string; conversationId: string }[] = [];
    for (let v = 0; v < VISITORS; v++) {
      const visitorId = randomUUID();
      const clientId = randomUUID();
      const res = await fetch(`${server.url}/v1/messenger/conversations`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ app_id: server.appId, visitor_id: visitorId, body: `first of ${v}`, client_id: clientId }),
      });
      expect(res.status).toBe(201);
      const started = (await res.json()) as { conversation: { id: string }; message: { id: string } };
      acked.set(clientId, { id: started.message.id, body: `first of ${v}` });
      visitors.push({ visitorId, conversationId: started.conversation.id });
    }

    const ackedCounts: number[] = [];
    for (let k = 0; k < KILLS; k++) {
      // The outbox first: what was not acknowledged before the last crash is sent again, same client_id.
      for (const m of pending) {
        const res = await send(server, m);
        expect(res.status, `resend ${m.clientId}`).toBe(201);
        expect(res.body.body).toBe(m.body);
        const earlier = acked.get(m.clientId);
        if (earlier) expect(res.body.id).toBe(earlier.id);
        acked.set(m.clientId, { id: res.body.id, body: m.body });
      }
      pending = [];

      const target = rng.int(5, 60);
      let ackedThisLife = 0;
      let stop = false;
      const worker = async () => {
        while (!stop) {
          const v = visitors[rng.int(0, VISITORS - 1)]!;
          const m: Outgoing = { ...v, clientId: randomUUID(), body: `burst ${serial++} <b>${'x'.repeat(rng.int(0, 400))}</b>` };
          try {
            const res = await send(server, m);
            if (res.status !== 201) throw new Error(`unexpected ${res.status}`);
            acked.set(m.clientId, { id: res.body.id, body: m.body });
            ackedThisLife++;
          } catch {
            pending.push(m); // no answer: the server died with this request in flight (or before it)
            return;
          }
        }
      };
      let running = CONCURRENCY;
      const workers = Array.from({ length: CONCURRENCY }, () => worker().finally(() => running--));
      while (ackedThisLife < target && running > 0) await sleep(1);
      await sleep(rng.int(0, 15));
      expect(await kill(server.p), `kill ${k} landed on a running server`).toBe(true);
      stop = true;
      await Promise.all(workers);
      ackedCounts.push(ackedThisLife);

      expect(integrityCheck(dbPath)).toEqual(['ok']);
      const stored = inspect(dbPath, (db) => db.prepare('select id, client_id, body from messages').all() as { id: string; client_id: string; body: string }[]);
      const byClient = new Map<string, { id: string; body: string }[]>();
      for (const m of stored) byClient.set(m.client_id, [...(byClient.get(m.client_id) ?? []), m]);
      for (const [clientId, a] of acked) expect(byClient.get(clientId), `acknowledged ${clientId} after kill ${k}`).toEqual([{ id: a.id, client_id: clientId, body: a.body }].map(({ id, body }) => ({ id, body, client_id: clientId })));
      // Stored but never acknowledged is allowed (the answer was lost); stored twice never is.
      expect([...byClient.values()].filter((l) => l.length > 1)).toEqual([]);
      server = await startServerProcess(dbPath);
    }

    // After the last restart: the outbox drains and every message is there once, in each conversation, via the API.
    for (const m of pending) {
      const res = await send(server, m);
      expect(res.status).toBe(201);
      acked.set(m.clientId, { id: res.body.id, body: m.body });
    }
    const seen = new Map<string, string>();
    for (const v of visitors) {
      const res = await fetch(`${server.url}/v1/messenger/conversations/${v.conversationId}/messages?app_id=${server.appId}&visitor_id=${v.visitorId}`);
      for (const m of ((await res.json()) as { data: { id: string; body: string; client_id: string }[] }).data) {
        expect(seen.has(m.client_id), `client_id ${m.client_id} listed twice`).toBe(false);
        seen.set(m.client_id, m.body);
      }
    }
    expect(seen.size).toBe(acked.size);
    for (const [clientId, a] of acked) expect(seen.get(clientId)).toBe(a.body);
    await kill(server.p);
    expect(integrityCheck(dbPath)).toEqual(['ok']);
    console.info(`crash messages: ${KILLS} kills, acknowledged per life ${ackedCounts.join(', ')}, ${acked.size} messages in all`);
  }, 120_000);
});
