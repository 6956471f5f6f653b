import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { userHash } from '../../server-stub/domain/verification.ts';
import { startInstance, type Instance } from '../support/instances.ts';
import { testDialect, testPostgresUrl } from '../support/server-app.ts';

/** Two real server processes on two ports against one PostgreSQL database (issue: scale out). */
describe.skipIf(testDialect !== 'postgres')('several instances on one PostgreSQL database', () => {
  const schema = `parley_multi_${randomBytes(5).toString('hex')}`;
  let a: Instance;
  let b: Instance;
  const env = { PARLEY_DATABASE_URL: testPostgresUrl, PARLEY_PG_SCHEMA: schema };

  beforeAll(async () => {
    [a, b] = await Promise.all([startInstance(env), startInstance(env)]);
  }, 60_000);

  afterAll(async () => {
    await a?.kill('SIGTERM');
    await b?.kill('SIGTERM');
    const client = new pg.Client({ connectionString: testPostgresUrl });
    await client.connect();
    await client.query(`drop schema if exists ${schema} cascade`);
    await client.end();
  });

  const post = async (base: string, path: string, body: unknown, token?: string) => {
    const res = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json().catch(() => null)) as any };
  };
  const get = async (base: string, path: string, token: string) => (await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } })).json() as Promise<any>;

  it('R12: 200 concurrent login pings spread over both instances make exactly one merge', async () => {
    const visitor = randomUUID();
    const started = await post(a.url, '/v1/messenger/conversations', { app_id: 'demo', visitor_id: visitor, body: 'hello', client_id: randomUUID() });
    expect(started.status).toBe(201);
    const user = { user_id: `multi-${randomUUID()}`, user_hash: '' };
    user.user_hash = userHash(a.identitySecret, user.user_id);
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => post(i % 2 ? a.url : b.url, '/v1/messenger/ping', { app_id: 'demo', visitor_id: visitor, user })));
    expect(answers.map((x) => x.status).filter((s) => s !== 200)).toEqual([]);
    expect(new Set(answers.map((x) => x.body.contact.id)).size).toBe(1);
    const deadline = Date.now() + 5000;
    let merges: any[] = [];
    while (Date.now() < deadline) {
      merges = (await get(a.url, `/v1/merges?contact_id=${started.body.contact.id}`, a.adminToken)).data;
      if (merges.length > 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 300)); // give a duplicate merge, were there one, time to land
    merges = (await get(b.url, `/v1/merges?contact_id=${started.body.contact.id}`, b.adminToken)).data;
    expect(merges).toHaveLength(1);
    const users = (await get(a.url, `/v1/contacts?user_id=${user.user_id}`, a.adminToken)).data;
    expect(users).toHaveLength(1);
  });

  it('a reply posted on instance A reaches a stream opened on instance B within a second', async () => {
    const visitor = randomUUID();
    const started = await post(b.url, '/v1/messenger/conversations', { app_id: 'demo', visitor_id: visitor, body: 'question', client_id: randomUUID() });
    const controller = new AbortController();
    const res = await fetch(`${b.url}/v1/messenger/stream?app_id=demo&visitor_id=${visitor}`, { signal: controller.signal });
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    while (!text.includes('event: ready')) text += decoder.decode((await reader.read()).value);
    const sentAt = Date.now();
    const reply = await post(a.url, `/v1/conversations/${started.body.conversation.id}/reply`, { body: 'from instance A' }, a.adminToken);
    expect(reply.status).toBe(201);
    while (!text.includes('from instance A')) {
      const chunk = await Promise.race([reader.read(), new Promise<never>((_, rej) => setTimeout(() => rej(new Error('no reply on B within a second')), 1000))]);
      text += decoder.decode(chunk.value);
    }
    expect(Date.now() - sentAt).toBeLessThan(1000);
    controller.abort();
  });

  const LEADS = 12_000;
  it('R12: killing A in the middle of a bulk merge and letting B finish leaves every lead merged or untouched, no message lost', async () => {
    const client = new pg.Client({ connectionString: testPostgresUrl, options: `-c search_path=${schema}` });
    await client.connect();
    try {
      // 12,000 leads (more than two bulk-merge batches) with a conversation and a message each, 12,000
      // matching users: written directly for speed.
      const now = new Date().toISOString();
      const tag = randomBytes(3).toString('hex');
      const leads = Array.from({ length: LEADS }, (_, i) => ({ id: `cnt_bulk${tag}l${String(i).padStart(5, '0')}`, email: `p${tag}${i}@bulk.example` }));
      for (let i = 0; i < leads.length; i += 500) {
        const part = leads.slice(i, i + 500);
        const contactRows = part.flatMap((l, j) => [
          `('${l.id}','demo','lead',null,'${l.email}','${l.email}','messenger','${now}','${now}')`,
          `('cnt_bulk${tag}u${String(i + j).padStart(5, '0')}','demo','user','bulk-${tag}-${i + j}','${l.email}','${l.email}','csv','${now}','${now}')`,
        ]);
        await client.query(`insert into contacts (id, app_id, role, user_id, email, email_norm, created_via, created_at, updated_at) values ${contactRows.join(',')}`);
        await client.query(`insert into conversations (id, app_id, contact_id, client_id, created_at, updated_at) values ${part.map((l) => `('cnv_${l.id}','demo','${l.id}','c_${l.id}','${now}','${now}')`).join(',')}`);
        await client.query(`insert into messages (id, app_id, conversation_id, author_type, author_id, body, created_at) values ${part.map((l) => `('msg_${l.id}','demo','cnv_${l.id}','contact','${l.id}','hi','${now}')`).join(',')}`);
      }
      const messagesBefore = Number((await client.query('select count(*) n from messages')).rows[0].n);
      const bulk = post(a.url, '/v1/merges/bulk', {}, a.adminToken).catch(() => null);
      await new Promise((r) => setTimeout(r, 300));
      await a.kill('SIGKILL');
      await bulk;

      const check = async () => {
        const rows = (await client.query(`
          select c.id, c.merged_into, (select count(*) from merges m where m.from_id = c.id) as audits,
                 (select contact_id from conversations v where v.id = 'cnv_' || c.id) as owner
          from contacts c where c.id like $1`, [`cnt_bulk${tag}l%`])).rows as { id: string; merged_into: string | null; audits: string; owner: string }[];
        for (const r of rows) {
          if (r.merged_into) expect([Number(r.audits), r.owner]).toEqual([1, r.merged_into]);
          else expect([Number(r.audits), r.owner]).toEqual([0, r.id]);
        }
        return rows.filter((r) => r.merged_into).length;
      };
      const mergedAfterKill = await check();
      expect(mergedAfterKill).toBeLessThan(LEADS);
      const finish = await post(b.url, '/v1/merges/bulk', {}, b.adminToken);
      expect(finish.status).toBe(200);
      expect(await check()).toBe(LEADS);
      expect(Number((await client.query('select count(*) n from messages')).rows[0].n)).toBe(messagesBefore);
    } finally {
      await client.end();
    }
  }, 60_000);
});
