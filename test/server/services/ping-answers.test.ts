import SQLite from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createPingAnswers, OTHERS_CHECK_MS, type PingAnswerSource } from '../../../server-stub/services/ping-answers.ts';
import type { PingAnswer } from '../../../server-stub/services/messenger.ts';
import type { App } from '../../../server-stub/storage/apps.ts';
import { mayChangePingAnswers } from '../../../server-stub/storage/write-effects.ts';
import { startTestServer, testDialect, type TestServer } from '../../support/server-app.ts';
import { operator, widget } from '../http/helpers.ts';

const answer = (name: string): PingAnswer => ({ contact: { id: 'cnt_1', role: 'lead', user_id: null, email: null, name }, merge: { status: 'none' }, unread_count: 0 });

function fakeSource() {
  const listeners: ((sql: string) => void)[] = [];
  const source: PingAnswerSource & { write(sql: string): void; version: number } = {
    version: 1,
    onWrite: (l) => void listeners.push(l),
    dataVersion: () => source.version,
    write: (sql) => listeners.forEach((l) => l(sql)),
  };
  return source;
}

describe('kept ping answers (the rules, with a fake database)', () => {
  it('an answer is kept until a write that may change answers, and survives writes that cannot', () => {
    const source = fakeSource();
    const kept = createPingAnswers(source, mayChangePingAnswers, () => 0);
    kept.keep(kept.generation, 'app', 'v1', 'cnt_1', answer('Ann'));
    expect(kept.get('app', 'v1')?.answer.contact.name).toBe('Ann');
    source.write('insert into "events" ("id") values (?)');
    source.write('update "contacts" set "last_seen_at" = ? where "id" = ?');
    expect(kept.get('app', 'v1')).toBeDefined();
    source.write('update "contacts" set "name" = ? where "id" = ?');
    expect(kept.get('app', 'v1')).toBeUndefined();
  });

  it('an answer read while a write happened is not kept (the read may predate it)', () => {
    const source = fakeSource();
    const kept = createPingAnswers(source, mayChangePingAnswers, () => 0);
    const readAt = kept.generation;
    source.write('delete from "visitors" where "contact_id" = ?');
    kept.keep(readAt, 'app', 'v1', 'cnt_1', answer('stale'));
    expect(kept.get('app', 'v1')).toBeUndefined();
    kept.keep(kept.generation, 'app', 'v1', 'cnt_1', answer('fresh'));
    expect(kept.get('app', 'v1')?.answer.contact.name).toBe('fresh');
  });

  it(`another process's commit drops every answer within ${OTHERS_CHECK_MS} ms`, () => {
    const source = fakeSource();
    let now = 0;
    const kept = createPingAnswers(source, mayChangePingAnswers, () => now);
    kept.keep(kept.generation, 'app', 'v1', 'cnt_1', answer('Ann'));
    source.version = 2; // the CLI committed a bulk merge
    now = OTHERS_CHECK_MS;
    expect(kept.get('app', 'v1')).toBeUndefined();
    expect(kept.size).toBe(0);
  });
});

describe.skipIf(testDialect !== 'sqlite')('kept ping answers on the real server (SQLite)', () => {
  let t: TestServer;
  let app: App;
  beforeEach(async () => {
    t = await startTestServer({ lastSeenFlushMs: 60_000 });
    app = await t.createApp();
  });
  afterEach(async () => t.close());

  /** Pings twice, so the second answer comes from memory, and checks it was kept. */
  async function keptPing(w: ReturnType<typeof widget>) {
    await w.ping();
    const r = await w.ping();
    expect(t.parley.services.pingAnswers!.get(app.id, w.visitorId)).toBeDefined();
    return r.body;
  }

  it('a known visitor\'s repeat ping is answered from memory, with the same answer', async () => {
    const w = widget(t, app);
    const first = await w.ping();
    const second = await keptPing(w);
    expect(second).toEqual(first.body);
  });

  it('an agent reply, then reading it, show in the next page view (unread count)', async () => {
    const w = widget(t, app);
    const started = await w.start('Hi');
    expect((await keptPing(w)).unread_count).toBe(0);
    await operator(t, app).reply(started.body.conversation.id, 'Hello, how can I help?');
    expect((await w.ping()).body.unread_count).toBe(1);
    await keptPing(w);
    await t.call('POST', `/v1/messenger/conversations/${started.body.conversation.id}/read`, { app_id: app.id, visitor_id: w.visitorId });
    expect((await w.ping()).body.unread_count).toBe(0);
  });

  it('lead details, a login and a logout each show in the next page view', async () => {
    const w = widget(t, app);
    expect((await keptPing(w)).contact.role).toBe('visitor');
    await w.ping({ lead: { email: 'ann@example.com', name: 'Ann' } });
    const asLead = await keptPing(w);
    expect(asLead.contact).toMatchObject({ role: 'lead', email: 'ann@example.com', name: 'Ann' });
    await w.login({ user_id: 'u-ann', email: 'ann@example.com' });
    await t.drain();
    const asUser = await keptPing(w);
    expect(asUser.contact).toMatchObject({ role: 'user', user_id: 'u-ann' });
    await w.logout();
    const after = (await w.ping()).body;
    expect(after.contact.id).not.toBe(asUser.contact.id);
    expect(after.contact.role).toBe('visitor');
  });

  it('R5: a user whose page views were kept answers "pending" on the next one after a lead is marked for them, and the merge runs', async () => {
    const user = widget(t, app);
    await user.login({ user_id: 'u-cara', email: 'cara@example.com' });
    await t.drain();
    expect((await keptPing(user)).merge.status).toBe('none');
    const lead = widget(t, app);
    await lead.start('Hello from before I signed up');
    await lead.ping({ lead: { email: 'cara@example.com' } }); // R3: marked for u-cara
    expect((await user.ping()).body.merge.status).toBe('pending');
    await t.drain();
    expect((await user.ping()).body.merge.status).toBe('done');
  });

  it('R15: after logout the old visitor id gets a new visitor, never the user\'s kept answer', async () => {
    const w = widget(t, app);
    await w.login({ user_id: 'u-dan' });
    await t.drain();
    const asUser = await keptPing(w);
    expect(asUser.contact.user_id).toBe('u-dan');
    await w.logout();
    const after = (await w.ping()).body;
    expect(after.contact).toMatchObject({ role: 'visitor', user_id: null });
    expect(after.contact.id).not.toBe(asUser.contact.id);
  });

  it('a bulk merge that takes the lead away shows in the lead\'s next page view', async () => {
    const w = widget(t, app);
    await w.ping({ lead: { email: 'bo@example.com' } });
    await w.start('Question');
    const lead = await keptPing(w);
    await operator(t, app).importCsv('user_id,email\nu-bo,bo@example.com\n');
    expect((await operator(t, app).bulk()).body.merged).toBe(1);
    const after = (await w.ping()).body;
    expect(after.contact.id).not.toBe(lead.contact.id);
  });

  it(`a change made by another process (the CLI) shows within ${OTHERS_CHECK_MS} ms`, async () => {
    const w = widget(t, app);
    const kept = await keptPing(w);
    const other = new SQLite(t.dbPath);
    try {
      other.prepare('UPDATE contacts SET name = ? WHERE id = ?').run('Renamed elsewhere', kept.contact.id);
    } finally {
      other.close();
    }
    await new Promise((r) => setTimeout(r, OTHERS_CHECK_MS + 20));
    expect((await w.ping()).body.contact.name).toBe('Renamed elsewhere');
  });
});

describe.skipIf(testDialect !== 'postgres')('kept ping answers on PostgreSQL', () => {
  it('are not kept: other instances write to the same database', async () => {
    const t = await startTestServer();
    try {
      expect(t.parley.services.pingAnswers).toBeUndefined();
    } finally {
      await t.close();
    }
  });
});
