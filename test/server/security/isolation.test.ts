/**
 * Nothing crosses apps, and a visitor id opens only its own contact's data: 404 (never 403) for
 * what belongs to someone else, so ids cannot be probed. After logout the old cookie opens nothing.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { App } from '../../../server-stub/storage/apps.ts';
import { BASE, startTestServer, type TestServer } from '../../support/server-app.ts';
import { dbFingerprint } from '../../support/db-fingerprint.ts';
import { operator, widget } from '../http/helpers.ts';

let t: TestServer;
let mine: App;
let theirs: App;
beforeEach(async () => {
  t = await startTestServer();
  mine = await t.createApp({ name: 'Mine' });
  theirs = await t.createApp({ name: 'Theirs' });
});
afterEach(async () => t.close());

/** The other app's data: a user with a merged lead, a messenger lead with an email, an API lead. */
async function theirData() {
  const op = operator(t, theirs);
  const user = await op.createContact({ role: 'user', user_id: 'shared-id', email: 'shared@example.com', name: 'Theirs' });
  const lead = widget(t, theirs);
  const started = await lead.start('their secret');
  await lead.ping({ lead: { email: 'lead@example.com' } });
  const merged = widget(t, theirs);
  const mergedStart = await merged.start('merged secret');
  expect((await op.merge(mergedStart.body.contact.id, user.body.id)).status).toBe(200);
  const apiLead = await op.createContact({ role: 'lead', email: 'shared@example.com' });
  return {
    userId: user.body.id as string,
    leadId: started.body.contact.id as string,
    conversationId: started.body.conversation.id as string,
    mergedLeadId: mergedStart.body.contact.id as string,
    mergedConversationId: mergedStart.body.conversation.id as string,
    apiLeadId: apiLead.body.id as string,
  };
}

const expect404 = (res: { status: number; body: any }, what: string) => {
  expect(res.status, what).toBe(404);
  expect(res.body.type, what).toMatch(/not-found$/);
};

describe("an app's admin token sees nothing of another app", () => {
  it('contacts: get by id (live, merged, API lead) is 404; lists by email, user_id and role find nothing', async () => {
    const their = await theirData();
    const op = operator(t, mine);
    for (const id of [their.userId, their.leadId, their.mergedLeadId, their.apiLeadId]) expect404(await op.contact(id), `GET /v1/contacts/${id}`);
    for (const q of ['', '?email=shared@example.com', '?email=lead@example.com', '?user_id=shared-id', '?role=user', '?role=lead', '?role=visitor', `?cursor=${their.leadId}`]) {
      const res = await op.contacts(q);
      expect(res.status, q).toBe(200);
      expect(res.body.data, q).toEqual([]);
    }
    // The same identity in my app is a different person: creating it is not a conflict.
    expect((await op.createContact({ role: 'user', user_id: 'shared-id', email: 'shared@example.com' })).status).toBe(201);
  });

  it('conversations and messages: list by contact, read, reply are 404; the unfiltered list holds only mine', async () => {
    const their = await theirData();
    const op = operator(t, mine);
    const before = await dbFingerprint(t.parley.services.db);
    for (const id of [their.userId, their.leadId, their.mergedLeadId]) expect404(await op.conversations(id), `conversations of ${id}`);
    for (const conv of [their.conversationId, their.mergedConversationId]) {
      expect404(await t.call('GET', `/v1/conversations/${conv}/messages`, undefined, { token: mine.admin_token }), `messages of ${conv}`);
      expect404(await op.reply(conv, 'an agent of another app'), `reply to ${conv}`);
    }
    expect((await t.call('GET', '/v1/conversations', undefined, { token: mine.admin_token })).body.data).toEqual([]);
    expect(await dbFingerprint(t.parley.services.db)).toBe(before);
  });

  it('merges list (all, by contact id) shows none of theirs', async () => {
    const their = await theirData();
    const op = operator(t, mine);
    expect((await operator(t, theirs).merges()).body.data).toHaveLength(1);
    for (const q of ['', `?contact_id=${their.userId}`, `?contact_id=${their.mergedLeadId}`]) {
      const res = await op.merges(q);
      expect(res.status, q).toBe(200);
      expect(res.body.data, q).toEqual([]);
    }
  });

  it('convert and explicit merge of their contacts are 404 in every direction, and write nothing', async () => {
    const their = await theirData();
    const op = operator(t, mine);
    const myUser = await op.createContact({ role: 'user', user_id: 'my-user' });
    const myLead = (await widget(t, mine).start('mine')).body.contact.id as string;
    const before = await dbFingerprint(t.parley.services.db);
    expect404(await op.convert(their.leadId), 'convert their lead');
    expect404(await op.convert(their.apiLeadId, { user_id: 'x-1' }), 'convert their API lead');
    expect404(await op.merge(their.leadId, myUser.body.id), 'their lead into my user');
    expect404(await op.merge(myLead, their.userId), 'my lead into their user');
    expect404(await op.merge(their.leadId, their.userId), 'their lead into their user, with my token');
    expect404(await op.merge(their.mergedLeadId, their.userId), 'their merged lead, with my token');
    expect(await dbFingerprint(t.parley.services.db)).toBe(before);
  });

  it('bulk merge touches none of their leads, even with include_api_leads and an identical email', async () => {
    const their = await theirData();
    const op = operator(t, mine);
    // My users share the emails of their leads: nothing may match across apps.
    await op.createContact({ role: 'user', email: 'lead@example.com' });
    const theirsBefore = await t.parley.services.db.selectFrom('contacts').selectAll().where('app_id', '=', theirs.id).orderBy('id').execute();
    const report = await op.bulk({ include_api_leads: true });
    expect(report.status).toBe(200);
    expect(report.body).toMatchObject({ merged: 0, ambiguous: 0, skipped: 0, conversations_moved: 0 });
    const theirsAfter = await t.parley.services.db.selectFrom('contacts').selectAll().where('app_id', '=', theirs.id).orderBy('id').execute();
    expect(theirsAfter).toEqual(theirsBefore);
    // In their app the same bulk merge does find their own lead (the test data can be merged at all).
    expect((await operator(t, theirs).bulk({ include_api_leads: true })).body.merged).toBe(1);
    expect((await operator(t, theirs).contact(their.apiLeadId)).body.id).toBe(their.userId);
  });

  it('a CSV import creates users only in its own app and marks none of their leads', async () => {
    const their = await theirData();
    const theirsBefore = await t.parley.services.db.selectFrom('contacts').selectAll().where('app_id', '=', theirs.id).orderBy('id').execute();
    const res = await operator(t, mine).importCsv('user_id,email,name\nshared-id,shared@example.com,Mine\nnew-1,lead@example.com,New\n');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ created: 2, updated: 0, failed: [] });
    const after = await t.parley.services.db.selectFrom('contacts').selectAll().where('app_id', '=', theirs.id).orderBy('id').execute();
    expect(after).toEqual(theirsBefore);
    const created = await t.parley.services.db.selectFrom('contacts').select(['app_id', 'user_id']).where('created_via', '=', 'csv').execute();
    expect(created).toEqual(expect.arrayContaining([{ app_id: mine.id, user_id: 'shared-id' }, { app_id: mine.id, user_id: 'new-1' }]));
    expect(created).toHaveLength(2);
    expect((await operator(t, theirs).contact(their.leadId)).body.merge_pending_into).toBeNull();
  });

  it("the CSV export lists only the token's own app", async () => {
    await theirData();
    await operator(t, mine).createContact({ role: 'user', user_id: 'only-mine' });
    const res = await t.call('GET', '/v1/exports/contacts.csv', undefined, { token: mine.admin_token });
    expect(res.status).toBe(200);
    const lines = String(res.body).trim().split('\r\n');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toContain('only-mine');
  });
});

describe("a visitor id opens only its own contact's conversations", () => {
  it("another visitor's real conversation ids are 404 for read, send and mark-read, and writing nothing", async () => {
    const owner = widget(t, mine);
    const started = await owner.start('private');
    const conv = started.body.conversation.id as string;
    await operator(t, mine).reply(conv, 'private answer');
    const intruder = widget(t, mine);
    await intruder.start('my own');
    const before = await dbFingerprint(t.parley.services.db);
    expect404(await intruder.messages(conv), 'read');
    expect404(await intruder.messages(conv, started.body.message.id), 'read after');
    expect404(await intruder.send(conv, 'intrusion'), 'send');
    expect404(await t.call('POST', `/v1/messenger/conversations/${conv}/read`, { app_id: mine.id, visitor_id: intruder.visitorId }), 'mark read');
    expect((await intruder.conversations()).body.data.map((c: { id: string }) => c.id)).not.toContain(conv);
    // The owner's contact id is not a visitor id either.
    const asContactId = widget(t, mine, started.body.contact.id.replace(/[^A-Za-z0-9_-]/g, ''));
    expect((await asContactId.conversations()).body.data).toEqual([]);
    expect404(await asContactId.messages(conv), 'contact id as visitor id');
    expect(await dbFingerprint(t.parley.services.db)).toBe(before);
  });

  it('guessed conversation ids (well-formed, neighbours, other formats) are 404, the same answer as for real ones', async () => {
    const owner = widget(t, mine);
    const real = (await owner.start('private')).body.conversation.id as string;
    const intruder = widget(t, mine);
    await intruder.ping();
    const neighbour = real.slice(0, -1) + (real.endsWith('0') ? '1' : '0');
    const guesses = [neighbour, 'cnv_00000000000000000000000000', `cnv_${randomUUID()}`, '1', 'null', real.toUpperCase(), `${real}x`];
    const answers = new Set<string>();
    for (const id of [real, ...guesses]) {
      const res = await intruder.messages(id);
      expect(res.status, id).toBe(404);
      answers.add(JSON.stringify(res.body));
    }
    expect(answers.size, 'a real id answers exactly like a guessed one').toBe(1);
  });

  it("the same visitor id in another app opens nothing of this app's conversations", async () => {
    const owner = widget(t, mine);
    const conv = (await owner.start('private')).body.conversation.id as string;
    const elsewhere = widget(t, theirs, owner.visitorId);
    expect((await elsewhere.conversations()).body.data).toEqual([]);
    expect404(await elsewhere.messages(conv), 'other app');
    expect404(await elsewhere.send(conv, 'x'), 'other app send');
  });
});

describe('R15: after logout the old visitor id opens nothing', () => {
  it("the old cookie can no longer list or read the user's conversations, send to them or open the stream", async () => {
    const secure = await t.createApp({ require_verification: true });
    const w = widget(t, secure);
    await w.login({ user_id: 'u-out', email: 'out@example.com' });
    const conv = (await w.start('before logout')).body.conversation.id as string;
    await operator(t, secure).reply(conv, 'agent answer');
    expect((await w.messages(conv)).body.data).toHaveLength(2);
    const stream = (visitorId: string) => t.fetch(new Request(`${BASE}/v1/messenger/stream?app_id=${secure.id}&visitor_id=${visitorId}`));
    const open = await stream(w.visitorId);
    expect(open.status).toBe(200);
    await open.body?.cancel();

    expect((await w.logout()).status).toBe(204);
    expect((await w.conversations()).body.data).toEqual([]);
    expect404(await w.messages(conv), 'read after logout');
    expect404(await w.send(conv, 'after logout'), 'send after logout');
    expect404(await t.call('POST', `/v1/messenger/conversations/${conv}/read`, { app_id: secure.id, visitor_id: w.visitorId }), 'mark read after logout');
    const closed = await stream(w.visitorId);
    expect(closed.status).toBe(404);
    await closed.body?.cancel();
    // A later anonymous ping on the old cookie is a new visitor, still with nothing to read.
    const again = await w.ping();
    expect(again.body.contact.role).toBe('visitor');
    expect((await w.conversations()).body.data).toEqual([]);
    expect404(await w.messages(conv), 'read after a new ping');
    // The user, logging in again on a fresh cookie, still has everything.
    const back = widget(t, secure);
    await back.login({ user_id: 'u-out', email: 'out@example.com' });
    expect((await back.messages(conv)).body.data.map((m: { body: string }) => m.body)).toEqual(['before logout', 'agent answer']);
  });
});
