/**
 * Users CSV import (R4): streamed row by row, so a file of any size fits in memory. Each row is
 * validated on its own; bad rows are reported with their line and the others import. Upserts by
 * user_id, else by email, so re-running an import changes nothing.
 */
import { Readable } from 'node:stream';
import { CsvError, parse } from 'csv-parse';
import { sql } from 'kysely';
import { encodeAttributes, parseAttributes, withAttributes } from '../domain/attributes.ts';
import { checkIdentity, normaliseEmail, type Identity } from '../domain/identity.ts';
import { emailMatch, matchUser } from '../domain/rules.ts';
import type { App } from '../storage/apps.ts';
import { updateContact, type ContactRow, type Db } from '../storage/contacts.ts';
import { forUpdate } from '../storage/row-locks.ts';
import type { Services } from './context.ts';
import { contactCreated, emitWebhookEvents } from './webhooks.ts';
import { transaction } from '../storage/transactions.ts';

export interface ImportReport {
  created: number;
  updated: number;
  unchanged: number;
  failed: { line: number; reason: string }[];
}

export interface ImportOptions {
  batchSize?: number;
  onProgress?: (rowsDone: number) => void;
  /** At most this many failures are listed (all are counted in `failed_count`). */
  maxFailuresListed?: number;
}

interface Row {
  line: number;
  identity: Identity;
  name: string | undefined;
  attributes: Record<string, string>;
}

const KNOWN = new Set(['user_id', 'email', 'name']);

const IMPORT_BATCH = 3000;

export async function importUsers(s: Services, app: App, input: Readable | ReadableStream<Uint8Array> | string, options: ImportOptions = {}): Promise<ImportReport & { failed_count: number; complete: boolean }> {
  // 3,000 rows a transaction: fewer commits rewriting the same index pages than 1,000 (measured on
  // 100,000 users), a batch holds the database for about a quarter of a second, and the process
  // stays well under 300 MB (5,000 came close to it).
  const batchSize = options.batchSize ?? IMPORT_BATCH;
  const maxListed = options.maxFailuresListed ?? 10_000;
  const report: ImportReport & { failed_count: number; complete: boolean } = { created: 0, updated: 0, unchanged: 0, failed: [], failed_count: 0, complete: true };
  const fail = (line: number, reason: string) => {
    report.failed_count++;
    if (report.failed.length < maxListed) report.failed.push({ line, reason });
  };
  const source = typeof input === 'string' ? Readable.from([input]) : input instanceof Readable ? input : Readable.fromWeb(input as import('node:stream/web').ReadableStream<Uint8Array>);
  // A quote inside a field is data (relax_quotes; strict quoting made csv-parse quadratic on long
  // lines and lost the rows after a bad one). A quote never closed swallows the rest of the file:
  // that record is reported and the report says the file was cut short. Cells are trimmed below
  // (csv-parse's own trim drops the rows after a skipped record).
  const parser = source.pipe(parse({ bom: true, relax_column_count: true, skip_empty_lines: true, info: true, raw: true, relax_quotes: true, skip_records_with_error: true }));
  let header: string[] | null = null;
  let headerError: string | null = null;
  parser.on('skip', (error: CsvError & { lines?: number; records?: number }) => {
    // Parsing runs ahead of the loop below, so "no record read yet" tells the header apart.
    if (error.records === 0) {
      // No header, no import: stop reading at once rather than parse the rest of the body.
      headerError = error.message;
      parser.destroy(new ImportError(`the header row cannot be read: ${error.message}`));
      return;
    }
    fail(error.lines ?? 0, `the record cannot be read: ${error.message}`);
    if (error.code === 'CSV_QUOTE_NOT_CLOSED') report.complete = false;
  });
  source.on('error', (e) => parser.destroy(e));

  const seen = new Map<string, number>();
  let batch: Row[] = [];
  let done = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    const rows = batch;
    batch = [];
    const counts = await transaction(s.db, (trx) => applyBatch(trx, s, app, rows));
    report.created += counts.created;
    report.updated += counts.updated;
    report.unchanged += counts.unchanged;
    done += rows.length;
    options.onProgress?.(done);
  };

  for await (const item of parser as AsyncIterable<{ record: string[]; info: { lines: number }; raw: string }>) {
    const { info, raw } = item;
    const record = item.record.map((cell) => cell.trim());
    if (header === null) {
      if (headerError) throw new ImportError(`the header row cannot be read: ${headerError}`);
      header = record.map((h) => h.trim().toLowerCase());
      if (!header.includes('user_id') && !header.includes('email')) throw new ImportError('the header row must name a user_id or an email column');
      if (new Set(header).size !== header.length) throw new ImportError('the header row repeats a column');
      continue;
    }
    // info.lines is where the record ends; a quoted field may span lines, so count back to its start.
    // raw carries parts of the line breaks around the record (LF or CR of CRLF): count only inside it.
    const inner = raw.replace(/^[\r\n]+|[\r\n]+$/g, '');
    const line = info.lines - (inner.match(/\n/g)?.length ?? 0);
    if (record.some((cell) => cell.includes('\u0000'))) {
      fail(line, 'a cell contains a NUL character');
      continue;
    }
    if (record.length > header.length) {
      fail(line, `too many columns: ${record.length} for ${header.length} in the header`);
      continue;
    }
    const cells = Object.fromEntries(header.map((h, i) => [h, record[i] ?? '']));
    const userId = cells['user_id'] ? cells['user_id'] : undefined;
    const email = cells['email'] ? cells['email'] : undefined;
    const checked = checkIdentity(userId, email);
    if (!checked.ok) {
      fail(line, checked.reason);
      continue;
    }
    if (!checked.identity) {
      fail(line, 'no user_id or email');
      continue;
    }
    const key = checked.identity.user_id !== null ? `id:${checked.identity.user_id}` : `email:${normaliseEmail(checked.identity.email!)}`;
    const earlier = seen.get(key);
    if (earlier !== undefined) {
      fail(line, `repeats the identity of line ${earlier}`);
      continue;
    }
    seen.set(key, line);
    const attributes: Record<string, string> = {};
    for (const [k, v] of Object.entries(cells)) if (!KNOWN.has(k) && v !== '') attributes[k] = v;
    batch.push({ line, identity: checked.identity, name: cells['name'] || undefined, attributes });
    if (batch.length >= batchSize) await flush();
  }
  if (header === null) throw new ImportError(headerError ? `the header row cannot be read: ${headerError}` : 'the file is empty: a header row is required');
  await flush();
  report.failed.sort((x, y) => x.line - y.line);
  return report;
}

export class ImportError extends Error {}

const IN_LIST = 900;
const slices = <T>(xs: readonly T[], n: number): T[][] => Array.from({ length: Math.ceil(xs.length / n) }, (_, i) => xs.slice(i * n, (i + 1) * n));

/**
 * Upserts one batch of rows in a handful of set-based statements: users are looked up together
 * (and locked on PostgreSQL, since their attributes are rewritten whole), new ones inserted together
 * with their attributes, then the matching leads marked (R3/R4).
 * Rows are matched in file order against what the batch has already done, as row-by-row would.
 */
async function applyBatch(trx: Db, s: Services, app: App, rows: Row[]): Promise<{ created: number; updated: number; unchanged: number }> {
  const userIds = rows.flatMap((r) => (r.identity.user_id === null ? [] : [r.identity.user_id]));
  const emails = [...new Set(rows.flatMap((r) => (r.identity.email === null ? [] : [normaliseEmail(r.identity.email)])))];
  const found = new Map<string, ContactRow>();
  const live = forUpdate(trx, trx.selectFrom('contacts').selectAll().where('app_id', '=', app.id).where('role', '=', 'user').where('merged_into', 'is', null));
  // By user_id alone (unique in an app), then kept if a live user: with the role in the query,
  // SQLite's planner read every user through (app_id, role) instead of the (app_id, user_id) index.
  for (const part of slices(userIds, IN_LIST)) {
    const named = await forUpdate(trx, trx.selectFrom('contacts').selectAll().where('app_id', '=', app.id).where('user_id', 'is not', null).where('user_id', 'in', part)).execute();
    for (const u of named) if (u.role === 'user' && u.merged_into === null) found.set(u.id, u);
  }
  for (const part of slices(emails, IN_LIST)) for (const u of await live.where('email_norm', 'in', part).execute()) found.set(u.id, u);
  const byUserId = new Map<string, ContactRow>();
  const byEmail = new Map<string, ContactRow[]>();
  const index = (u: ContactRow) => {
    if (u.user_id !== null) byUserId.set(u.user_id, u);
    if (u.email_norm !== null) byEmail.set(u.email_norm, [...(byEmail.get(u.email_norm) ?? []).filter((x) => x.id !== u.id), u]);
  };
  found.forEach(index);

  const now = s.clock.now().toISOString();
  const inserts: ContactRow[] = [];
  const updates: { id: string; changes: Partial<ContactRow> }[] = [];
  const counts = { created: 0, updated: 0, unchanged: 0 };
  for (const row of rows) {
    const emailNorm = row.identity.email === null ? null : normaliseEmail(row.identity.email);
    const candidates = [
      ...(row.identity.user_id !== null && byUserId.has(row.identity.user_id) ? [byUserId.get(row.identity.user_id)!] : []),
      ...(emailNorm !== null ? byEmail.get(emailNorm) ?? [] : []),
    ];
    const match = matchUser(row.identity, candidates);
    if (!match) {
      const user: ContactRow = {
        id: s.ids('cnt'), app_id: app.id, role: 'user', user_id: row.identity.user_id, email: row.identity.email, email_norm: emailNorm, name: row.name ?? null,
        created_via: 'csv', created_at: now, updated_at: now, last_seen_at: null, merged_into: null, merged_at: null, merge_into_id: null, merge_trigger: null,
        attributes: encodeAttributes(row.attributes), event_summaries: '{}',
      };
      inserts.push(user);
      index(user);
      counts.created++;
      continue;
    }
    const user = match.user;
    const changes: Partial<ContactRow> = {};
    if (row.identity.user_id !== null && user.user_id === null) changes.user_id = row.identity.user_id;
    if (row.identity.email !== null && user.email !== row.identity.email) Object.assign(changes, { email: row.identity.email, email_norm: emailNorm });
    if (row.name !== undefined && row.name !== user.name) changes.name = row.name;
    const attributes = withAttributes(parseAttributes(user.attributes), row.attributes);
    if (attributes.changed) changes.attributes = encodeAttributes(attributes.next);
    if (Object.keys(changes).length === 0) {
      counts.unchanged++;
      continue;
    }
    counts.updated++;
    updates.push({ id: user.id, changes: { ...changes, updated_at: now } });
    Object.assign(user, changes);
    index(user);
  }

  // 50 rows of 17 columns: under the 1,000 parameters past which the SQLite driver prepares afresh.
  for (const part of slices(inserts, 50)) await trx.insertInto('contacts').values(part).execute();
  await emitWebhookEvents(trx, s, app.id, inserts.map(contactCreated));
  for (const u of updates) await updateContact(trx, u.id, u.changes);

  // R3/R4: messenger leads sharing an email with exactly one user are marked for that user, in one
  // statement through the (lead, user) work table rather than one update per lead.
  const marks: { from_id: string; into_id: string }[] = [];
  for (const part of slices(emails, IN_LIST)) {
    const leads = await trx.selectFrom('contacts').select(['id', 'email_norm', 'merge_into_id', 'merge_trigger'])
      .where('app_id', '=', app.id).where('email_norm', 'in', part).where('role', '=', 'lead').where('created_via', '=', 'messenger').where('merged_into', 'is', null).execute();
    for (const lead of leads) {
      const target = emailMatch(byEmail.get(lead.email_norm!) ?? []);
      if (target && lead.merge_trigger !== 'cookie' && lead.merge_into_id !== target.id) marks.push({ from_id: lead.id, into_id: target.id });
    }
  }
  if (marks.length > 0) {
    const batchId = s.ids('mk');
    for (const part of slices(marks, 300)) await trx.insertInto('merge_batch').values(part.map((m) => ({ batch_id: batchId, ...m }))).execute();
    await trx.updateTable('contacts')
      .set({ merge_into_id: sql`(select into_id from merge_batch b where b.batch_id = ${batchId} and b.from_id = contacts.id)`, merge_trigger: 'csv' })
      .where('id', 'in', trx.selectFrom('merge_batch').select('from_id').where('batch_id', '=', batchId)).execute();
    await trx.deleteFrom('merge_batch').where('batch_id', '=', batchId).execute();
  }
  return counts;
}
