import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { App } from '../../../server-stub/storage/apps.ts';
import { startTestServer, type TestServer } from '../../support/server-app.ts';
import { dbFingerprint } from '../../support/db-fingerprint.ts';
import { operator, widget } from './helpers.ts';

let t: TestServer;
let app: App;

beforeEach(async () => {
  t = await startTestServer();
  app = await t.createApp();
});
afterEach(async () => t.close());

const makeLeadFor = (w: ReturnType<typeof widget>) => w.start('a lead question');

/** A lead with a conversation, an attribute and events, as a widget makes one. */
async function makeLead(w: ReturnType<typeof widget>, opts: { email?: string } = {}) {
  await w.ping({ attributes: { plan: 'trial', city: 'Lyon' } });
  await w.event('viewed_pricing', '2026-01-01T00:00:00.000Z');
  await w.event('viewed_pricing', '2026-03-01T00:00:00.000Z');
  const started = await w.start('Do you ship to France?');
  expect(started.status).toBe(201);
  if (opts.email) await w.ping({ lead: { email: opts.email } });
  return { id: started.body.contact.id as string, conversationId: started.body.conversation.id as string };
}

describe('messenger identity rules', () => {
  it('R1: a visitor who starts a conversation becomes a lead in place, keeping events and attributes', async () => {
    const w = widget(t, app);
    const first = await w.ping({ attributes: { plan: 'trial' } });
    expect(first.body.contact.role).toBe('visitor');
    await w.event('opened_pricing');
    const started = await w.start('Hi');
    expect(started.body.contact).toMatchObject({ id: first.body.contact.id, role: 'lead' });
    const detail = await operator(t, app).contact(first.body.contact.id);
    expect(detail.body.attributes).toEqual({ plan: 'trial' });
    expect(detail.body.events).toMatchObject([{ name: 'opened_pricing', count: 1 }]);
    expect(detail.body.conversation_ids).toEqual([started.body.conversation.id]);
  });

  it('R1: visitors are hidden from default contact lists, leads are listed', async () => {
    const a = widget(t, app);
    await a.ping();
    const b = widget(t, app);
    await b.start('hello');
    const list = await operator(t, app).contacts();
    expect(list.body.data.map((c: { role: string }) => c.role)).toEqual(['lead']);
    const visitors = await operator(t, app).contacts('?role=visitor');
    expect(visitors.body.data).toHaveLength(1);
  });

  it('R2: a login ping marks the cookie lead and the merge carries conversations, attributes and events', async () => {
    const w = widget(t, app);
    const lead = await makeLead(w);
    const op = operator(t, app);
    const created = await op.createContact({ role: 'user', user_id: 'u-42', email: 'ann@example.com', attributes: { plan: 'pro' } });
    const login = await w.login({ user_id: 'u-42', email: 'ann@example.com' });
    expect(login.status).toBe(200);
    expect(login.body.contact).toMatchObject({ id: created.body.id, role: 'user', user_id: 'u-42' });
    expect(login.body.merge.status).toBe('pending');
    await t.drain();
    expect((await w.login({ user_id: 'u-42', email: 'ann@example.com' })).body.merge.status).toBe('done');

    const user = await op.contact(created.body.id);
    expect(user.body.conversation_ids).toEqual([lead.conversationId]);
    expect(user.body.attributes).toEqual({ plan: 'pro', city: 'Lyon' }); // R6: never overwrite
    expect(user.body.events).toEqual([{ name: 'viewed_pricing', count: 2, first_at: '2026-01-01T00:00:00.000Z', last_at: '2026-03-01T00:00:00.000Z' }]);
    // The widget now sees the conversation under the user.
    expect((await w.conversations()).body.data.map((c: { id: string }) => c.id)).toEqual([lead.conversationId]);
  });

  it('R2: an identity on a cookie with no contact binds the cookie to the user, creating no visitor', async () => {
    const w = widget(t, app);
    const login = await w.login({ user_id: 'u-7', email: 'bo@example.com', name: 'Bo' });
    expect(login.body.contact).toMatchObject({ role: 'user', user_id: 'u-7', name: 'Bo' });
    expect(login.body.merge.status).toBe('none');
    await w.event('signed_in');
    const started = await w.start('question');
    expect(started.body.contact.id).toBe(login.body.contact.id);
    const count = await t.parley.services.db.selectFrom('contacts').select((eb) => eb.fn.countAll<number>().as('n')).where('app_id', '=', app.id).executeTakeFirstOrThrow();
    expect(Number(count.n)).toBe(1);
    expect((await operator(t, app).contact(login.body.contact.id)).body.events).toMatchObject([{ name: 'signed_in', count: 1 }]);
  });

  it('R2: the user is created on first login (created_via messenger)', async () => {
    const w = widget(t, app);
    await makeLead(w);
    const login = await w.login({ user_id: 'new-user' });
    const user = await operator(t, app).contact(login.body.contact.id);
    expect(user.body).toMatchObject({ role: 'user', user_id: 'new-user', created_via: 'messenger' });
  });

  it('R3: a lead who leaves the email of an existing user is marked, and merged only when that user pings', async () => {
    const op = operator(t, app);
    const user = await op.createContact({ role: 'user', user_id: 'u-1', email: 'Cy@Example.com' });
    const w = widget(t, app);
    const lead = await makeLead(w, { email: ' cy@example.COM ' });
    const marked = await op.contact(lead.id);
    expect(marked.body.merge_pending_into).toMatchObject({ id: user.body.id, trigger: 'email' });
    expect(marked.body.id).toBe(lead.id); // marking merged nothing

    const userWidget = widget(t, app);
    const ping = await userWidget.login({ user_id: 'u-1' });
    expect(ping.body.merge.status).toBe('pending');
    await t.drain();
    expect((await op.contact(lead.id)).body.id).toBe(user.body.id);
    expect((await op.merges()).body.data).toMatchObject([{ from: lead.id, into: user.body.id, trigger: 'email', conversations_moved: 1, events_moved: 2 }]);
  });

  it('R3: creating a user with a lead\'s email marks the lead', async () => {
    const w = widget(t, app);
    const lead = await makeLead(w, { email: 'dee@example.com' });
    const op = operator(t, app);
    const user = await op.createContact({ role: 'user', email: 'dee@example.com' });
    expect((await op.contact(lead.id)).body.merge_pending_into?.id).toBe(user.body.id);
  });

  it('R3: an email shared by two users marks nothing', async () => {
    const op = operator(t, app);
    await op.createContact({ role: 'user', user_id: 'a', email: 'twin@example.com' });
    await op.createContact({ role: 'user', user_id: 'b', email: 'twin@example.com' });
    const lead = await makeLead(widget(t, app), { email: 'twin@example.com' });
    expect((await op.contact(lead.id)).body.merge_pending_into).toBeNull();
  });

  it('R3: a mark by email is withdrawn when a second user gets that email, and the first user\'s ping merges nothing', async () => {
    const op = operator(t, app);
    const first = await op.createContact({ role: 'user', user_id: 'a', email: 'pat@example.com' });
    const lead = await makeLead(widget(t, app), { email: 'pat@example.com' });
    expect((await op.contact(lead.id)).body.merge_pending_into?.id).toBe(first.body.id);
    await op.createContact({ role: 'user', user_id: 'b', email: 'PAT@example.com' });
    expect((await op.contact(lead.id)).body.merge_pending_into).toBeNull();
    const ping = await widget(t, app).login({ user_id: 'a' });
    expect(ping.body.merge.status).not.toBe('pending');
    await t.drain();
    expect((await op.contact(lead.id)).body).toMatchObject({ id: lead.id, role: 'lead' });
    expect((await op.merges()).body.data).toEqual([]);
    expect((await op.bulk({ dry_run: true })).body).toMatchObject({ merged: 0, ambiguous: 1 });
  });

  it('R3: a merge job whose email mark no longer names the one user with that email merges nothing and drops the mark', async () => {
    const op = operator(t, app);
    const first = await op.createContact({ role: 'user', user_id: 'a', email: 'kim@example.com' });
    const lead = await makeLead(widget(t, app), { email: 'kim@example.com' });
    // The user pings: the merge job is queued but not run yet...
    expect((await widget(t, app).login({ user_id: 'a' })).body.merge.status).toBe('pending');
    // ...and before it runs, a second user with the same email arrives by a way that marks nothing.
    const now = new Date().toISOString();
    await t.parley.services.db.insertInto('contacts').values({
      id: 'cnt_second_kim', app_id: app.id, role: 'user', user_id: 'b', email: 'kim@example.com', email_norm: 'kim@example.com', name: null, created_via: 'api',
      created_at: now, updated_at: now, last_seen_at: null, merged_into: null, merged_at: null, merge_into_id: null, merge_trigger: null, attributes: '{}', event_summaries: '{}',
    }).execute();
    await t.drain();
    const after = (await op.contact(lead.id)).body;
    expect(after).toMatchObject({ id: lead.id, role: 'lead', merge_pending_into: null });
    expect((await op.merges()).body.data).toEqual([]);
    expect(first.body.id).not.toBe(lead.id);
  });

  it('R4: a CSV mark is withdrawn when a later import gives a second user the lead\'s email', async () => {
    const lead = await makeLead(widget(t, app), { email: 'sam@example.com' });
    const op = operator(t, app);
    await op.importCsv('user_id,email\nu-sam,sam@example.com\n');
    expect((await op.contact(lead.id)).body.merge_pending_into).toMatchObject({ user_id: 'u-sam', trigger: 'csv' });
    await op.importCsv('user_id,email\nu-sam-2,Sam@Example.com\n');
    expect((await op.contact(lead.id)).body.merge_pending_into).toBeNull();
    await widget(t, app).login({ user_id: 'u-sam' });
    await t.drain();
    expect((await op.contact(lead.id)).body).toMatchObject({ id: lead.id, role: 'lead' });
  });

  it('R4: users imported from CSV mark matching leads; the merge waits for the user\'s ping', async () => {
    const lead = await makeLead(widget(t, app), { email: 'eve@example.com' });
    const op = operator(t, app);
    const report = await op.importCsv('user_id,email,name,plan\nu-eve,eve@example.com,Eve,gold\n');
    expect(report.body).toMatchObject({ created: 1, updated: 0, failed: [] });
    const pending = (await op.contact(lead.id)).body.merge_pending_into;
    expect(pending).toMatchObject({ user_id: 'u-eve', trigger: 'csv' });
    await t.drain();
    expect((await op.contact(lead.id)).body.id).toBe(lead.id); // R5: an import only marks
    await widget(t, app).login({ user_id: 'u-eve' });
    await t.drain();
    expect((await op.contact(lead.id)).body.id).toBe(pending.id);
    expect((await op.merges()).body.data[0].trigger).toBe('csv');
  });

  it('R5: the ping answers at once with pending and the background worker merges without another request', async () => {
    const w = widget(t, app);
    const lead = await makeLead(w);
    const login = await w.login({ user_id: 'u-5' });
    expect(login.body.merge.status).toBe('pending');
    const deadline = Date.now() + 2000;
    let merged = false;
    while (!merged && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      merged = (await t.parley.services.db.selectFrom('merges').select('id').where('from_id', '=', lead.id).execute()).length === 1;
    }
    expect(merged).toBe(true);
  });

  it('R6: a merged lead is gone from every list and its id resolves to the user', async () => {
    const w = widget(t, app);
    const lead = await makeLead(w);
    const login = await w.login({ user_id: 'u-6' });
    await t.drain();
    const op = operator(t, app);
    const all = await op.contacts();
    expect(all.body.data.map((c: { id: string }) => c.id)).toEqual([login.body.contact.id]);
    expect((await op.contacts('?role=lead')).body.data).toEqual([]);
    expect((await op.contact(lead.id)).body.id).toBe(login.body.contact.id);
    expect((await op.conversations(lead.id)).body.data.map((c: { id: string }) => c.id)).toEqual([lead.conversationId]);
    // Messages stay unchanged and in order.
    await w.send(lead.conversationId, 'second');
    const messages = await w.messages(lead.conversationId);
    expect(messages.body.data.map((m: { body: string }) => m.body)).toEqual(['Do you ship to France?', 'second']);
  });

  it('R7: an API-created lead is not merged by a ping or by an email match', async () => {
    const op = operator(t, app);
    const apiLead = await op.createContact({ role: 'lead', email: 'fay@example.com' });
    const user = await op.createContact({ role: 'user', user_id: 'u-fay', email: 'fay@example.com' });
    await widget(t, app).login({ user_id: 'u-fay' });
    await t.drain();
    const still = await op.contact(apiLead.body.id);
    expect(still.body).toMatchObject({ id: apiLead.body.id, role: 'lead', merge_pending_into: null });
    // It can be merged explicitly.
    expect((await op.merge(apiLead.body.id, user.body.id)).status).toBe(200);
  });

  it('R8: a cookie that belongs to user U, arriving with identity W, answers 409 and writes nothing', async () => {
    const w = widget(t, app);
    await makeLead(w);
    await w.login({ user_id: 'u-first' });
    await t.drain();
    const before = await dbFingerprint(t.parley.services.db);
    const other = await w.login({ user_id: 'u-second' });
    expect(other.status).toBe(409);
    expect(other.headers.get('content-type')).toContain('application/problem+json');
    expect(other.body.type).toMatch(/visitor-reset-required$/);
    expect(await dbFingerprint(t.parley.services.db)).toBe(before);
    // A fresh visitor for W works and U was not merged into W.
    const fresh = await widget(t, app).login({ user_id: 'u-second' });
    expect(fresh.status).toBe(200);
    expect((await operator(t, app).merges()).body.data).toHaveLength(1);
  });

  it('R8: the same cookie logging in before the merge ran as another user is also refused', async () => {
    const w = widget(t, app);
    await makeLead(w);
    await w.login({ user_id: 'u-a' });
    const other = await w.login({ user_id: 'u-b' });
    expect(other.status).toBe(409);
  });

  it('R9: convert makes a lead a user in place when no user has the identity', async () => {
    const lead = await makeLead(widget(t, app));
    const converted = await operator(t, app).convert(lead.id, { user_id: 'u-9', email: 'gus@example.com' });
    expect(converted.status).toBe(200);
    expect(converted.body).toMatchObject({ id: lead.id, role: 'user', user_id: 'u-9', email: 'gus@example.com' });
  });

  it('R9: convert merges the lead into the user that has the identity', async () => {
    const op = operator(t, app);
    const user = await op.createContact({ role: 'user', user_id: 'u-10' });
    const lead = await makeLead(widget(t, app));
    const converted = await op.convert(lead.id, { user_id: 'u-10' });
    expect(converted.body.id).toBe(user.body.id);
    expect(converted.body.conversation_ids).toEqual([lead.conversationId]);
    expect((await op.merges()).body.data[0]).toMatchObject({ trigger: 'convert', from: lead.id, into: user.body.id });
  });

  it('R10: explicit merge of a lead into a user; self-merge 400; user into user 409', async () => {
    const op = operator(t, app);
    const u1 = await op.createContact({ role: 'user', user_id: 'x1' });
    const u2 = await op.createContact({ role: 'user', user_id: 'x2' });
    const lead = await makeLead(widget(t, app));
    const merged = await op.merge(lead.id, u1.body.id);
    expect(merged.status).toBe(200);
    expect(merged.body.merge).toMatchObject({ from: lead.id, into: u1.body.id, trigger: 'explicit', conversations_moved: 1, events_moved: 2 });
    expect((await op.merge(u1.body.id, u1.body.id)).status).toBe(400);
    const before = await dbFingerprint(t.parley.services.db);
    const refused = await op.merge(u2.body.id, u1.body.id);
    expect(refused.status).toBe(409);
    expect(await dbFingerprint(t.parley.services.db)).toBe(before);
  });

  it('R12: merging an already merged lead is a no-op', async () => {
    const op = operator(t, app);
    const u = await op.createContact({ role: 'user', user_id: 'x1' });
    const lead = await makeLead(widget(t, app));
    const first = await op.merge(lead.id, u.body.id);
    const before = await dbFingerprint(t.parley.services.db);
    const again = await op.merge(lead.id, u.body.id);
    expect(again.status).toBe(200);
    expect(again.body.merge.id).toBe(first.body.merge.id);
    expect(await dbFingerprint(t.parley.services.db)).toBe(before);
  });

  it('R13: every merge writes an audit entry with trigger and counts', async () => {
    const w = widget(t, app);
    const lead = await makeLead(w);
    const login = await w.login({ user_id: 'u-13' });
    await t.drain();
    const entries = await operator(t, app).merges(`?contact_id=${lead.id}`);
    expect(entries.body.data).toHaveLength(1);
    expect(entries.body.data[0]).toMatchObject({ from: lead.id, into: login.body.contact.id, trigger: 'cookie', conversations_moved: 1, events_moved: 2 });
    expect(entries.body.data[0].id).toEqual(expect.any(String));
    expect(new Date(entries.body.data[0].created_at).toISOString()).toBe(entries.body.data[0].created_at);
    expect(entries.body.next_cursor).toBeNull();
  });

  it('R15: after logout the old visitor id no longer reads the user\'s conversations', async () => {
    const w = widget(t, app);
    const login = await w.login({ user_id: 'u-15' });
    const started = await w.start('private words');
    expect(started.body.contact.id).toBe(login.body.contact.id);
    expect((await w.logout()).status).toBe(204);
    expect((await w.conversations()).body.data).toEqual([]);
    expect((await w.messages(started.body.conversation.id)).status).toBe(404);
    // The next person on the browser starts as a new visitor and is never merged into the previous user.
    const next = await w.ping();
    expect(next.body.contact.role).toBe('visitor');
    expect(next.body.contact.id).not.toBe(login.body.contact.id);
  });
});

describe('R3 without takeover', () => {
  it('R14: with verification on, an email sent beside a signed user_id is not proven and names nobody', async () => {
    const secure = await t.createApp({ require_verification: true });
    const op = operator(t, secure);
    const victimUser = await op.createContact({ role: 'user', email: 'victim@example.com' });
    const victim = widget(t, secure);
    await victim.login({ email: 'victim@example.com' });
    const secret = await victim.start('private: my address is ...');
    const lead = widget(t, secure);
    await makeLeadFor(lead);
    await lead.ping({ lead: { email: 'victim@example.com' } });
    // An attacker signs a user_id of their own and claims the victim's email beside it.
    const attacker = widget(t, secure);
    const res = await attacker.login({ user_id: 'attacker-new', email: 'victim@example.com' });
    expect(res.status).toBe(200);
    expect(res.body.contact).toMatchObject({ user_id: 'attacker-new', email: null });
    expect(res.body.contact.id).not.toBe(victimUser.body.id);
    await t.drain();
    expect((await attacker.conversations()).body.data).toEqual([]);
    expect((await attacker.messages(secret.body.conversation.id)).status).toBe(404);
    expect((await op.contact(victimUser.body.id)).body).toMatchObject({ user_id: null, email: 'victim@example.com' });
    expect((await op.merges()).body.data).toEqual([]);
  });

  it('R3: a stranger who leaves a user\'s email gets merged, but their cookie never opens the user\'s conversations', async () => {
    const secure = await t.createApp({ require_verification: true });
    await operator(t, secure).createContact({ role: 'user', user_id: 'victim', email: 'victim@example.com' });
    const victim = widget(t, secure);
    const login = await victim.login({ user_id: 'victim' });
    const secret = await victim.start('my private order details');
    const stranger = widget(t, secure);
    await stranger.start('hi');
    await stranger.ping({ lead: { email: 'victim@example.com' } });
    await victim.login({ user_id: 'victim', email: 'victim@example.com' }); // the victim's next page load runs the merge (R5)
    await t.drain();
    expect((await operator(t, secure).merges()).body.data[0]).toMatchObject({ into: login.body.contact.id, trigger: 'email' });
    expect((await stranger.conversations()).body.data).toEqual([]);
    expect((await stranger.messages(secret.body.conversation.id)).status).toBe(404);
    const again = await stranger.ping();
    expect(again.body.contact.id).not.toBe(login.body.contact.id);
    expect(again.body.contact.role).toBe('visitor');
  });

  it('R6: after a bulk merge the lead\'s browser starts afresh; the user holds the conversation', async () => {
    const op = operator(t, app);
    const user = await op.createContact({ role: 'user', user_id: 'u-b', email: 'b@example.com' });
    const w = widget(t, app);
    const lead = await makeLead(w, { email: 'b@example.com' });
    expect((await op.bulk({})).body.merged).toBe(1);
    expect((await op.contact(user.body.id)).body.conversation_ids).toEqual([lead.conversationId]);
    expect((await w.conversations()).body.data).toEqual([]);
  });
});

describe('marks follow the facts', () => {
  it('R3: a lead that corrects its email loses the mark of the old one', async () => {
    const op = operator(t, app);
    await op.createContact({ role: 'user', user_id: 'bob', email: 'bob@example.com' });
    const w = widget(t, app);
    const lead = await makeLead(w, { email: 'bob@example.com' });
    expect((await op.contact(lead.id)).body.merge_pending_into?.user_id).toBe('bob');
    await w.ping({ lead: { email: 'alice@example.com' } });
    expect((await op.contact(lead.id)).body.merge_pending_into).toBeNull();
    await widget(t, app).login({ user_id: 'bob' });
    await t.drain();
    expect((await op.contact(lead.id)).body.id).toBe(lead.id);
  });

  it('R5: a signed-in user\'s page view without the identity still runs the merges waiting for them', async () => {
    const op = operator(t, app);
    const bob = widget(t, app);
    const login = await bob.login({ user_id: 'bob', email: 'bob@example.com' });
    // R3 marks the lead when it leaves Bob's email, while Bob's cookie is already his.
    const lead = await makeLead(widget(t, app), { email: 'bob@example.com' });
    expect((await op.contact(lead.id)).body.merge_pending_into?.id).toBe(login.body.contact.id);
    const first = await bob.ping();
    expect(first.body.merge.status).toBe('pending');
    await t.drain();
    expect((await bob.ping()).body.merge.status).toBe('done');
    expect((await op.contact(lead.id)).body.id).toBe(login.body.contact.id);
  });
});
