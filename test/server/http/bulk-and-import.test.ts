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

async function leadWithEmail(email: string, events = 1) {
  const w = widget(t, app);
  for (let i = 0; i < events; i++) await w.event('visited');
  const started = await w.start(`hello from ${email}`);
  await w.ping({ lead: { email } });
  return started.body.contact.id as string;
}

describe('R11 bulk merge', () => {
  it('R11: merges every messenger lead matching exactly one user and reports the counts', async () => {
    const op = operator(t, app);
    await op.importCsv('user_id,email\nu1,one@example.com\nu2,two@example.com\nua,amb@example.com\nub,amb@example.com\n');
    const l1 = await leadWithEmail('one@example.com', 2);
    const l2 = await leadWithEmail('TWO@example.com', 3);
    const amb = await leadWithEmail('amb@example.com');
    await leadWithEmail('nobody@example.com');
    const api = await op.createContact({ role: 'lead', email: 'one@example.com' });

    const dry = await op.bulk({ dry_run: true });
    expect(dry.body).toMatchObject({ merged: 2, ambiguous: 1, skipped: 1, conversations_moved: 2, events_moved: 5 });
    expect(dry.body.ambiguous_leads.map((a: { id: string }) => a.id)).toEqual([amb]);

    const real = await op.bulk({});
    expect(real.status).toBe(200);
    expect(real.body).toMatchObject({ merged: 2, ambiguous: 1, skipped: 1, conversations_moved: 2, events_moved: 5 });
    expect((await op.contact(l1)).body.user_id).toBe('u1');
    expect((await op.contact(l2)).body.user_id).toBe('u2');
    expect((await op.contact(amb)).body.id).toBe(amb);
    expect((await op.contact(api.body.id)).body.role).toBe('lead');
    const audit = await op.merges();
    expect(audit.body.data.map((m: { trigger: string }) => m.trigger)).toEqual(['bulk', 'bulk']);

    const withApi = await op.bulk({ include_api_leads: true });
    expect(withApi.body).toMatchObject({ merged: 1, ambiguous: 1, skipped: 0 });
  });

  it('R11: a dry run changes nothing', async () => {
    const op = operator(t, app);
    await op.createContact({ role: 'user', user_id: 'u1', email: 'one@example.com' });
    await leadWithEmail('one@example.com');
    const before = await dbFingerprint(t.parley.services.db);
    expect((await op.bulk({ dry_run: true })).body.merged).toBe(1);
    expect(await dbFingerprint(t.parley.services.db)).toBe(before);
  });

  it('R11: bad options are refused with 400', async () => {
    expect((await operator(t, app).bulk({ dry_run: 'yes' })).status).toBe(400);
  });

  it('R12: a merge that fails half-way leaves the lead untouched (one transaction)', async () => {
    const op = operator(t, app);
    const user = await op.createContact({ role: 'user', user_id: 'u1', email: 'one@example.com' });
    const lead = await leadWithEmail('one@example.com', 2);
    const before = await dbFingerprint(t.parley.services.db);
    // Fail at the very last step of the merge: writing the audit entry.
    const ids = t.parley.services.ids;
    t.parley.services.ids = (prefix) => {
      if (prefix === 'mrg') throw new Error('injected crash');
      return ids(prefix);
    };
    const crashed = await op.merge(lead, user.body.id);
    expect(crashed.status).toBe(500);
    expect(await dbFingerprint(t.parley.services.db)).toBe(before);
    t.parley.services.ids = ids;
    expect((await op.merge(lead, user.body.id)).status).toBe(200);
    expect((await op.contact(user.body.id)).body.events).toMatchObject([{ name: 'visited', count: 2 }]);
  });
});

describe('R4 users CSV import', () => {
  it('R4: imports rows, reports bad ones with their line, and a re-run changes nothing', async () => {
    const op = operator(t, app);
    const csv = '\uFEFFuser_id,email,name,plan\r\n'
      + 'u1,ann@example.com,"Ann, the first",gold\r\n'
      + ',bob@example.com,Bob,\r\n'
      + 'null,x@example.com,Junk,\r\n'
      + 'u4,not-an-email,Bad,\r\n'
      + ',,Nobody,\r\n'
      + 'u1,other@example.com,Again,\r\n'
      + ',BOB@example.com,Bob again,\r\n'
      + 'u8,c@example.com,Too,many,columns\r\n'
      + 'u9,"multi\nline@example.com",Q,\r\n';
    const first = await op.importCsv(csv);
    expect(first.status).toBe(200);
    expect(first.body.created).toBe(2);
    expect(first.body.failed.map((f: { line: number }) => f.line)).toEqual([4, 5, 6, 7, 8, 9, 10]);
    expect(first.body.failed[2].reason).toMatch(/no user_id or email/);
    expect(first.body.failed[3].reason).toBe('repeats the identity of line 2');
    expect(first.body.failed[4].reason).toBe('repeats the identity of line 3');
    expect(first.body.failed[5].reason).toMatch(/too many columns/);
    const ann = await op.contacts('?user_id=u1');
    expect(ann.body.data[0]).toMatchObject({ name: 'Ann, the first', created_via: 'csv', email: 'ann@example.com' });
    expect((await op.contact(ann.body.data[0].id)).body.attributes).toEqual({ plan: 'gold' });

    const before = await dbFingerprint(t.parley.services.db);
    const again = await op.importCsv(csv);
    expect(again.body).toMatchObject({ created: 0, updated: 0 });
    expect(await dbFingerprint(t.parley.services.db)).toBe(before);
  });

  it('R4: line numbers are right with LF line ends and multi-line fields too', async () => {
    const res = await operator(t, app).importCsv('user_id,email,name\ncust_1,a@example.com,"two\nlines"\ncust_2,null,C\n\ncust_3,nope,D\n');
    expect(res.body.failed).toEqual([{ line: 4, reason: expect.stringMatching(/not a real identity/) }, { line: 6, reason: 'email is malformed' }]);
  });

  it('R4: a file without a usable header is refused with 400 and writes nothing', async () => {
    const before = await dbFingerprint(t.parley.services.db);
    const res = await operator(t, app).importCsv('name,plan\nAnn,gold\n');
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(await dbFingerprint(t.parley.services.db)).toBe(before);
  });
});

describe('R4 a damaged CSV file', () => {
  it('R4: a quote inside a field is data, and the rows after it import', async () => {
    const op = operator(t, app);
    const res = await op.importCsv('user_id,email,name\nu1,a@example.com, Ann \nu2,b@example.com,Bo "Bob" Jones\nu3,c@example.com,Cy\n');
    expect(res.body).toMatchObject({ created: 3, complete: true, failed: [] });
    expect((await op.contacts('?user_id=u2')).body.data[0].name).toBe('Bo "Bob" Jones');
    expect((await op.contacts('?user_id=u1')).body.data[0].name).toBe('Ann');
  });

  it('R4: a header of one huge malformed line is refused quickly with 400', async () => {
    const res = await operator(t, app).importCsv(`${'{"a":'.repeat(6000)}1${'}'.repeat(6000)}`);
    expect(res.status).toBe(400);
  });

  it('R4: rows before the damage import and the report says where the file could not be read', async () => {
    const rows = Array.from({ length: 1005 }, (_, i) => `u${i},u${i}@example.com`);
    const res = await operator(t, app).importCsv(`user_id,email\n${rows.join('\n')}\nu-bad,"never closed\n`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ created: 1005, complete: false });
    expect(res.body.failed).toEqual([{ line: expect.any(Number), reason: expect.stringMatching(/cannot be read/) }]);
    expect(res.body.failed[0].line).toBeGreaterThanOrEqual(1007);
  });
});
