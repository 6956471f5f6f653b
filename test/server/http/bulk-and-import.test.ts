import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { importUsers } from '../../../server-stub/services/user-import.ts';
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

/** POSTs raw bytes (the JSON helper only sends strings). */
async function importBytes(bytes: Uint8Array) {
  const res = await t.fetch(new Request('http://parley.test/v1/imports/users', { method: 'POST', headers: { authorization: `Bearer ${app.admin_token}`, 'content-type': 'text/csv' }, body: new Blob([new Uint8Array(bytes)]) }));
  return { status: res.status, body: (await res.json()) as any };
}

const failedLines = (body: { failed: { line: number }[] }) => body.failed.map((f) => f.line);

describe('R4 an identity repeated within one file', () => {
  it('R4: a user_id row after an email-only row with that email is a repeat, and a re-run changes nothing', async () => {
    const op = operator(t, app);
    const csv = 'user_id,email,name\n,a@example.com,Alice\nu1, A@Example.com ,Bob\n';
    const first = await op.importCsv(csv);
    expect(first.body).toMatchObject({ created: 1, updated: 0, failed: [{ line: 3, reason: 'repeats the identity of line 2' }] });
    const before = await dbFingerprint(t.parley.services.db);
    const again = await op.importCsv(csv);
    expect(again.body).toMatchObject({ created: 0, updated: 0, unchanged: 1, failed: [{ line: 3, reason: 'repeats the identity of line 2' }] });
    expect(await dbFingerprint(t.parley.services.db)).toBe(before);
    expect((await op.contacts('?email=a@example.com')).body.data).toMatchObject([{ name: 'Alice', user_id: null }]);
  });

  it('R4: an email-only row after a user_id row with that email is a repeat, and a re-run changes nothing', async () => {
    const op = operator(t, app);
    const csv = 'user_id,email,name\nu1,a@example.com,Bob\n,A@EXAMPLE.COM,Alice\n';
    const first = await op.importCsv(csv);
    expect(first.body).toMatchObject({ created: 1, updated: 0, failed: [{ line: 3, reason: 'repeats the identity of line 2' }] });
    const before = await dbFingerprint(t.parley.services.db);
    const again = await op.importCsv(csv);
    expect(again.body).toMatchObject({ created: 0, updated: 0, unchanged: 1 });
    expect(await dbFingerprint(t.parley.services.db)).toBe(before);
    expect((await op.contacts('?user_id=u1')).body.data).toMatchObject([{ name: 'Bob' }]);
  });

  it('R4: different user_ids may share an email; a later email-only row with it names nobody, and a repeated user_id repeats', async () => {
    const op = operator(t, app);
    const csv = 'user_id,email,name\nu1,shared@example.com,One\nu2,shared@example.com,Two\n,shared@example.com,Who\nu1,other@example.com,Again\n';
    const first = await op.importCsv(csv);
    expect(first.body).toMatchObject({ created: 2, failed: [{ line: 4, reason: 'several users have this email: give the user_id' }, { line: 5, reason: 'repeats the identity of line 2' }] });
    const again = await op.importCsv(csv);
    expect(again.body).toMatchObject({ created: 0, updated: 0, unchanged: 2 });
  });
});

describe('R4 rows that only look alike', () => {
  it('R4: an email-only row that updates an existing user, then a new user_id with the same email, are two people: both import', async () => {
    const op = operator(t, app);
    await op.importCsv('user_id,email,name\nC,x@example.com,Carol\n');
    const csv = 'user_id,email,name\n,x@example.com,Caroline\nB,x@example.com,Bob\n';
    const first = await op.importCsv(csv);
    expect(first.body).toMatchObject({ created: 1, updated: 1, failed: [] });
    expect((await op.contacts('?email=x@example.com')).body.data.map((c: { user_id: string; name: string }) => [c.user_id, c.name]).sort())
      .toEqual([['B', 'Bob'], ['C', 'Caroline']]);
    const again = await op.importCsv(csv);
    expect(again.body).toMatchObject({ created: 0, updated: 0, unchanged: 1, failed: [{ line: 2, reason: 'several users have this email: give the user_id' }] });
  });
});

describe('R4 line numbers', () => {
  // Bad rows start on lines 2, 5, 8 and 9; lines 3-4 and 9-10 are one record each (quoted line breaks).
  const rows = ['user_id,email,name', 'u1,null,A', 'u2,b@example.com,"two', 'lines"', 'u3,nope,C', '', 'u4,"d@example.com",D', ',,E', 'u5,"bad', 'email",F', 'u6,f@example.com,"G"', ''];
  const variants: [string, string][] = [['LF', rows.join('\n')], ['CRLF', rows.join('\r\n')], ['LF with BOM', `\uFEFF${rows.join('\n')}`], ['CRLF with BOM', `\uFEFF${rows.join('\r\n')}`]];

  it.each(variants)('R4: a bad row is reported on the physical line where its record starts (%s)', async (_name, csv) => {
    const res = await operator(t, app).importCsv(csv);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ created: 3, complete: true });
    expect(failedLines(res.body)).toEqual([2, 5, 8, 9]);
    expect(res.body.failed[3].reason).toBe('email is malformed');
  });

  it('R4: line numbers do not depend on how the stream is cut (CRLF in 3-byte chunks)', async () => {
    const bytes = Buffer.from(`\uFEFF${rows.join('\r\n')}`);
    const chunks = Array.from({ length: Math.ceil(bytes.length / 3) }, (_, i) => bytes.subarray(i * 3, i * 3 + 3));
    const report = await importUsers(t.parley.services, app, Readable.from(chunks));
    expect(failedLines(report)).toEqual([2, 5, 8, 9]);
  });

  it('R4: a quote never closed is reported on the line where its record starts, after CRLF multi-line fields', async () => {
    const res = await operator(t, app).importCsv('user_id,email,name\r\nu1,a@example.com,"x\r\ny\r\nz"\r\nu2,b@example.com,B\r\nu3,"never closed\r\nu4,c@example.com,C\r\n');
    expect(res.body).toMatchObject({ created: 2, complete: false });
    expect(res.body.failed).toEqual([{ line: 6, reason: expect.stringMatching(/cannot be read/) }]);
  });
});

describe('R4 a file that is not UTF-8', () => {
  it('R4: a row with bytes that are not UTF-8 (Latin-1 from Excel) fails with its line; the other rows import', async () => {
    const op = operator(t, app);
    const bytes = Buffer.concat([
      Buffer.from('user_id,email,name\r\nu1,a@example.com,Zo\u00eb\r\nu2,b@example.com,M'),
      Buffer.from([0xfc]), // ü in Latin-1
      Buffer.from('ller\r\nu3,c@example.com,"multi\r\nline \u00e9t\u00e9"\r\nu4,d@example.com,Caf'),
      Buffer.from([0xe9]),
      Buffer.from('\r\nu5,e@example.com,Replacement \uFFFD kept\r\n'),
    ]);
    const res = await importBytes(bytes);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ created: 3, complete: true });
    expect(failedLines(res.body)).toEqual([3, 6]);
    for (const f of res.body.failed) expect(f.reason).toMatch(/not valid UTF-8.*save .*UTF-8/i);
    expect((await op.contacts('?user_id=u2')).body.data).toEqual([]);
    expect((await op.contacts('?user_id=u1')).body.data[0].name).toBe('Zo\u00eb');
    expect((await op.contacts('?user_id=u3')).body.data[0].name).toBe('multi\r\nline \u00e9t\u00e9');
    expect((await op.contacts('?user_id=u5')).body.data[0].name).toBe('Replacement \uFFFD kept');
  });

  it('R4: a character split between two stream chunks is decoded whole', async () => {
    const bytes = Buffer.from('user_id,email,name\nu1,a@example.com,M\u00fcller \u{1F600}\n');
    const chunks = Array.from(bytes, (b) => Buffer.from([b]));
    const report = await importUsers(t.parley.services, app, Readable.from(chunks));
    expect(report).toMatchObject({ created: 1, failed: [] });
    expect((await operator(t, app).contacts('?user_id=u1')).body.data[0].name).toBe('M\u00fcller \u{1F600}');
  });

  it('R4: a header that is not UTF-8 is refused with 400 and writes nothing', async () => {
    const before = await dbFingerprint(t.parley.services.db);
    const res = await importBytes(Buffer.concat([Buffer.from('user_id,email,Gr'), Buffer.from([0xf6, 0xdf]), Buffer.from('e\nu1,a@example.com,L\n')]));
    expect(res.status).toBe(400);
    expect(res.body.detail).toMatch(/UTF-8/);
    expect(await dbFingerprint(t.parley.services.db)).toBe(before);
  });

  it('R4: a UTF-16 file (byte order mark FF FE) is refused with 400 asking for UTF-8', async () => {
    const res = await importBytes(Buffer.from('\uFEFFuser_id,email\r\nu1,a@example.com\r\n', 'utf16le'));
    expect(res.status).toBe(400);
    expect(res.body.detail).toMatch(/UTF-16: save it as UTF-8/);
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
