/**
 * Users CSV import (R4): streamed row by row, so a file of any size fits in memory. Each row is
 * validated on its own; bad rows are reported with their line and the others import. Upserts by
 * user_id, else by email, so re-running an import changes nothing.
 */
import { isUtf8 } from 'node:buffer';
import { Readable, pipeline } from 'node:stream';
import { CsvError, parse } from 'csv-parse';
import { encodeAttributes, parseAttributes, withAttributes } from '../domain/attributes.ts';
import { checkIdentity, normaliseEmail, type Identity } from '../domain/identity.ts';
import { emailMatch, matchUser } from '../domain/rules.ts';
import type { App } from '../storage/apps.ts';
import { updateContact, type ContactRow, type Db } from '../storage/contacts.ts';
import { forUpdate } from '../storage/row-locks.ts';
import { statisticsRefresher } from '../storage/planner-statistics.ts';
import { chunks, rowsPerInsert } from '../storage/batching.ts';
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
  const source = typeof input === 'string' ? Readable.from([Buffer.from(input)]) : input instanceof Readable ? input : Readable.fromWeb(input as import('node:stream/web').ReadableStream<Uint8Array>);
  // A quote inside a field is data (relax_quotes; strict quoting made csv-parse quadratic on long
  // lines and lost the rows after a bad one). A quote never closed swallows the rest of the file:
  // that record is reported and the report says the file was cut short. Cells are trimmed below
  // (csv-parse's own trim drops the rows after a skipped record).
  // Cells come out as latin1, one character per byte, so that each record's bytes can be checked
  // as UTF-8 whole (a character split between stream chunks is whole by then) and a bad byte fails
  // its row instead of turning into U+FFFD. csv-parse's own BOM handling would switch it back to
  // lossy UTF-8, hence withoutBom. Delimiters, quotes and line breaks are ASCII: same bytes either way.
  const parser = parse({ encoding: 'latin1', bom: false, relax_column_count: true, skip_empty_lines: true, raw: true, relax_quotes: true, skip_records_with_error: true });
  pipeline(Readable.from(withoutBom(source)), parser, () => undefined); // errors reach the loop below through the parser
  let header: string[] | null = null;
  let headerError: string | null = null;
  let unreadable: { lead: string; message: string } | null = null;
  parser.on('skip', (error: CsvError & { records?: number }, raw: string | undefined) => {
    // Parsing runs ahead of the loop below, so "no record read yet" tells the header apart.
    if (error.records === 0) {
      // No header, no import: stop reading at once rather than parse the rest of the body.
      headerError = error.message;
      parser.destroy(new ImportError(`the header row cannot be read: ${error.message}`));
      return;
    }
    // With these options the one record error is a quote never closed, which runs to the end of
    // the input: its line is known once the loop has counted the lines of every record before it.
    // Only the line breaks before it are kept: its raw text is the rest of the file.
    unreadable = { lead: /^[\r\n]*/.exec(raw ?? '')![0], message: error.message };
    if (error.code === 'CSV_QUOTE_NOT_CLOSED') report.complete = false;
  });

  // Each user this import has touched, with the line that did: a later row that resolves to the
  // same user repeats that line (re-running the file would have it undo the earlier row each time).
  const touched = new Map<string, number>();
  const lines = createLineCounter();
  let batch: Row[] = [];
  let done = 0;
  // PostgreSQL: the batches' lookups are planned from statistics the import itself makes stale.
  const refresh = statisticsRefresher(s.db, 'contacts');
  const flush = async () => {
    if (batch.length === 0) return;
    const rows = batch;
    batch = [];
    const counts = await transaction(s.db, (trx) => applyBatch(trx, s, app, rows, touched));
    // Recorded once the batch committed: a batch PostgreSQL runs again must not meet its own rows.
    for (const [id, line] of counts.touched) touched.set(id, line);
    for (const r of counts.repeats) fail(r.line, `repeats the identity of line ${r.earlier}`);
    for (const line of counts.ambiguous) fail(line, 'several users have this email: give the user_id');
    report.created += counts.created;
    report.updated += counts.updated;
    report.unchanged += counts.unchanged;
    done += rows.length;
    await refresh(report.created);
    options.onProgress?.(done);
  };

  for await (const item of parser as AsyncIterable<{ record: string[]; raw: string }>) {
    const line = lines.next(item.raw);
    const decoded = decodeRecord(item.raw, item.record);
    if (header === null) {
      if (headerError) throw new ImportError(`the header row cannot be read: ${headerError}`);
      if (decoded === null) throw new ImportError(`the header row ${NOT_UTF8}`);
      header = decoded.map((h) => h.trim().toLowerCase());
      if (!header.includes('user_id') && !header.includes('email')) throw new ImportError('the header row must name a user_id or an email column');
      if (new Set(header).size !== header.length) throw new ImportError('the header row repeats a column');
      continue;
    }
    if (decoded === null) {
      fail(line, `the row ${NOT_UTF8}`);
      continue;
    }
    const record = decoded.map((cell) => cell.trim());
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
    const attributes: Record<string, string> = {};
    for (const [k, v] of Object.entries(cells)) if (!KNOWN.has(k) && v !== '') attributes[k] = v;
    batch.push({ line, identity: checked.identity, name: cells['name'] || undefined, attributes });
    if (batch.length >= batchSize) await flush();
  }
  if (header === null) throw new ImportError(headerError ? `the header row cannot be read: ${headerError}` : 'the file is empty: a header row is required');
  const cut = unreadable as { lead: string; message: string } | null; // assigned in the 'skip' handler, which TypeScript does not follow
  if (cut !== null) fail(lines.next(cut.lead), `the record cannot be read: ${cut.message}`);
  await flush();
  report.failed.sort((x, y) => x.line - y.line);
  return report;
}

const NOT_UTF8 = 'contains bytes that are not valid UTF-8: save the file as UTF-8 (in Excel: "CSV UTF-8")';

/**
 * The file's bytes without a UTF-8 byte order mark. A UTF-16 one is refused: the import reads
 * UTF-8 only, and a UTF-16 file read as UTF-8 would fail on every row.
 */
async function* withoutBom(source: AsyncIterable<Buffer | Uint8Array | string>): AsyncGenerator<Buffer> {
  let head: Buffer | null = Buffer.alloc(0);
  for await (const chunk of source) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (head === null) {
      yield bytes;
      continue;
    }
    // The mark may come in pieces: hold the first bytes until there are three.
    head = Buffer.concat([head, bytes]);
    if (head.length >= 3) {
      yield stripBom(head);
      head = null;
    }
  }
  if (head !== null && head.length > 0) yield stripBom(head);
}

function stripBom(head: Buffer): Buffer {
  if (head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf) return head.subarray(3);
  if ((head[0] === 0xff && head[1] === 0xfe) || (head[0] === 0xfe && head[1] === 0xff)) throw new ImportError('the file is UTF-16: save it as UTF-8 (in Excel: "CSV UTF-8")');
  return head;
}

const NON_ASCII = /[\x80-\xff]/;

/**
 * A record's cells as text, or null when its bytes are not valid UTF-8. `raw` and `cells` are
 * latin1 (one character per byte); the raw record is checked, not the cells, since csv-parse drops
 * the quotes around a field and so could join the pieces of a broken character into a valid one.
 * A U+FFFD written as such in the file is valid UTF-8 and kept.
 */
function decodeRecord(raw: string, cells: string[]): string[] | null {
  if (!NON_ASCII.test(raw)) return cells; // ASCII reads the same in latin1 and UTF-8
  if (!isUtf8(Buffer.from(raw, 'latin1'))) return null;
  return cells.map((cell) => (NON_ASCII.test(cell) ? Buffer.from(cell, 'latin1').toString('utf8') : cell));
}

/**
 * Physical line numbers (1-based) where records start, from their raw text in file order. csv-parse's
 * own count (info.lines) counts a CRLF inside a quoted field twice. Its raw text holds every line
 * break of the file except the LF of a CRLF that ends a record or an empty line, so a CR counts as
 * a line break by itself and an LF only when no CR comes before it (LF, CRLF and lone-CR files).
 * A record's raw text starts with the empty lines skipped before it.
 */
function createLineCounter(): { next(raw: string): number } {
  let breaks = 0;
  return {
    next(raw) {
      let leading = 0;
      while (leading < raw.length && (raw[leading] === '\r' || raw[leading] === '\n')) leading++;
      const start = 1 + breaks + countLineBreaks(raw.slice(0, leading));
      breaks += countLineBreaks(raw);
      return start;
    },
  };
}

function countLineBreaks(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 13 || (c === 10 && text.charCodeAt(i - 1) !== 13)) n++;
  }
  return n;
}

export class ImportError extends Error {}

interface BatchOutcome {
  created: number;
  updated: number;
  unchanged: number;
  /** The users this batch's rows landed on, with the row's line. */
  touched: Map<string, number>;
  /** Rows that landed on a user an earlier row had (the batch left them out). */
  repeats: { line: number; earlier: number }[];
  /** Email-only rows whose email several users share (left out). */
  ambiguous: number[];
}

const IN_LIST = 900;
/** The columns of a contact row (ContactRow), for sizing multi-row inserts. */
const CONTACT_COLUMNS = 17;

/**
 * Upserts one batch of rows in a handful of set-based statements: users are looked up together
 * (and locked on PostgreSQL, since their attributes are rewritten whole), new ones inserted together
 * with their attributes, then the matching leads marked (R3/R4).
 * Rows are matched in file order against what the batch has already done, as row-by-row would.
 */
async function applyBatch(trx: Db, s: Services, app: App, rows: Row[], touchedBefore: ReadonlyMap<string, number>): Promise<BatchOutcome> {
  const userIds = rows.flatMap((r) => (r.identity.user_id === null ? [] : [r.identity.user_id]));
  const emails = [...new Set(rows.flatMap((r) => (r.identity.email === null ? [] : [normaliseEmail(r.identity.email)])))];
  const found = new Map<string, ContactRow>();
  const live = forUpdate(trx, trx.selectFrom('contacts').selectAll().where('app_id', '=', app.id).where('role', '=', 'user').where('merged_into', 'is', null));
  // By user_id alone (unique in an app), then kept if a live user: with the role in the query,
  // SQLite's planner read every user through (app_id, role) instead of the (app_id, user_id) index.
  for (const part of chunks(userIds, IN_LIST)) {
    const named = await forUpdate(trx, trx.selectFrom('contacts').selectAll().where('app_id', '=', app.id).where('user_id', 'is not', null).where('user_id', 'in', part)).execute();
    for (const u of named) if (u.role === 'user' && u.merged_into === null) found.set(u.id, u);
  }
  for (const part of chunks(emails, IN_LIST)) for (const u of await live.where('email_norm', 'in', part).execute()) found.set(u.id, u);
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
  const counts: BatchOutcome = { created: 0, updated: 0, unchanged: 0, touched: new Map(), repeats: [], ambiguous: [] };
  for (const row of rows) {
    const emailNorm = row.identity.email === null ? null : normaliseEmail(row.identity.email);
    const candidates = [
      ...(row.identity.user_id !== null && byUserId.has(row.identity.user_id) ? [byUserId.get(row.identity.user_id)!] : []),
      ...(emailNorm !== null ? byEmail.get(emailNorm) ?? [] : []),
    ];
    const match = matchUser(row.identity, candidates);
    // An email alone that matches no one of the users who have it (several, each with a user_id)
    // names none of them (R11's ambiguity): it must not become one more user with that email.
    if (!match && row.identity.user_id === null && candidates.length > 0) {
      counts.ambiguous.push(row.line);
      continue;
    }
    if (!match) {
      const user: ContactRow = {
        id: s.ids('cnt'), app_id: app.id, role: 'user', user_id: row.identity.user_id, email: row.identity.email, email_norm: emailNorm, name: row.name ?? null,
        created_via: 'csv', created_at: now, updated_at: now, last_seen_at: null, merged_into: null, merged_at: null, merge_into_id: null, merge_trigger: null,
        attributes: encodeAttributes(row.attributes), event_summaries: '{}',
      };
      inserts.push(user);
      index(user);
      counts.touched.set(user.id, row.line);
      counts.created++;
      continue;
    }
    const user = match.user;
    // Two rows of the file that land on one user (an email-only row, then a row with a user_id
    // that the import attaches to that same user, say) would undo each other on every re-run.
    const earlier = touchedBefore.get(user.id) ?? counts.touched.get(user.id);
    if (earlier !== undefined) {
      counts.repeats.push({ line: row.line, earlier });
      continue;
    }
    counts.touched.set(user.id, row.line);
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

  for (const part of chunks(inserts, rowsPerInsert(trx, CONTACT_COLUMNS))) await trx.insertInto('contacts').values(part).execute();
  await emitWebhookEvents(trx, s, app.id, inserts.map(contactCreated));
  for (const u of updates) await updateContact(trx, u.id, u.changes);

  // R3/R4: messenger leads sharing an email with exactly one user are marked for that user, in one
  // statement through the (lead, user) work table rather than one update per lead.
  const marks: { from_id: string; into_id: string }[] = [];
  const withdrawn: string[] = [];
  for (const part of chunks(emails, IN_LIST)) {
    const leads = await trx.selectFrom('contacts').select(['id', 'email_norm', 'merge_into_id', 'merge_trigger'])
      .where('app_id', '=', app.id).where('email_norm', 'in', part).where('role', '=', 'lead').where('created_via', '=', 'messenger').where('merged_into', 'is', null).execute();
    for (const lead of leads) {
      const target = emailMatch(byEmail.get(lead.email_norm!) ?? []);
      if (target && lead.merge_trigger !== 'cookie' && lead.merge_into_id !== target.id) marks.push({ from_id: lead.id, into_id: target.id });
      // A row gave a second user this lead's email: an email or CSV mark no longer names one user.
      else if (!target && (lead.merge_trigger === 'email' || lead.merge_trigger === 'csv')) withdrawn.push(lead.id);
    }
  }
  // The trigger re-checked in the statement: a cookie mark committed meanwhile (PostgreSQL) stays.
  for (const part of chunks(withdrawn, IN_LIST)) await trx.updateTable('contacts').set({ merge_into_id: null, merge_trigger: null }).where('id', 'in', part).where('merge_trigger', 'in', ['email', 'csv']).execute();
  if (marks.length > 0) {
    const batchId = s.ids('mk');
    for (const part of chunks(marks, rowsPerInsert(trx, 3))) await trx.insertInto('merge_batch').values(part.map((m) => ({ batch_id: batchId, ...m }))).execute();
    // UPDATE … FROM: each work row finds its lead by key (as `id in (select …)`, PostgreSQL planned
    // from statistics that see the work table empty and read every contact).
    await trx.updateTable('contacts').from('merge_batch as b').set((eb) => ({ merge_into_id: eb.ref('b.into_id'), merge_trigger: 'csv' }))
      .where('b.batch_id', '=', batchId).whereRef('b.from_id', '=', 'contacts.id').execute();
    await trx.deleteFrom('merge_batch').where('batch_id', '=', batchId).execute();
  }
  return counts;
}
