/**
 * Users CSV import (R4): streamed row by row, so a file of any size fits in memory. Each row is
 * validated on its own; bad rows are reported with their line and the others import. Upserts by
 * user_id, else by email, so re-running an import changes nothing.
 */
import { Readable } from 'node:stream';
import { parse } from 'csv-parse';
import { checkIdentity, normaliseEmail, type Identity } from '../domain/identity.ts';
import { matchUser } from '../domain/rules.ts';
import type { App } from '../storage/apps.ts';
import { setAttributes, updateContact, usersForIdentity, type ContactRow, type Db } from '../storage/contacts.ts';
import type { Services } from './context.ts';
import { createUser, markLeadsMatchingUser } from './identity.ts';

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

export async function importUsers(s: Services, app: App, input: Readable | ReadableStream<Uint8Array> | string, options: ImportOptions = {}): Promise<ImportReport & { failed_count: number }> {
  const batchSize = options.batchSize ?? 1000;
  const maxListed = options.maxFailuresListed ?? 10_000;
  const report: ImportReport & { failed_count: number } = { created: 0, updated: 0, unchanged: 0, failed: [], failed_count: 0 };
  const fail = (line: number, reason: string) => {
    report.failed_count++;
    if (report.failed.length < maxListed) report.failed.push({ line, reason });
  };
  const source = typeof input === 'string' ? Readable.from([input]) : input instanceof Readable ? input : Readable.fromWeb(input as import('node:stream/web').ReadableStream<Uint8Array>);
  const parser = source.pipe(parse({ bom: true, relax_column_count: true, skip_empty_lines: true, info: true, raw: true, trim: true }));
  source.on('error', (e) => parser.destroy(e));

  let header: string[] | null = null;
  const seen = new Map<string, number>();
  let batch: Row[] = [];
  let done = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    const rows = batch;
    batch = [];
    await s.db.transaction().execute(async (trx) => {
      for (const row of rows) {
        const outcome = await upsertUser(trx, s, app, row);
        report[outcome]++;
      }
    });
    done += rows.length;
    options.onProgress?.(done);
  };

  for await (const item of parser as AsyncIterable<{ record: string[]; info: { lines: number }; raw: string }>) {
    const { record, info, raw } = item;
    if (header === null) {
      header = record.map((h) => h.trim().toLowerCase());
      if (!header.includes('user_id') && !header.includes('email')) throw new ImportError('the header row must name a user_id or an email column');
      if (new Set(header).size !== header.length) throw new ImportError('the header row repeats a column');
      continue;
    }
    // info.lines is where the record ends; a quoted field may span lines, so count back to its start.
    const line = info.lines - (raw.match(/\n/g)?.length ?? 0);
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
  if (header === null) throw new ImportError('the file is empty: a header row is required');
  await flush();
  return report;
}

export class ImportError extends Error {}

async function upsertUser(trx: Db, s: Services, app: App, row: Row): Promise<'created' | 'updated' | 'unchanged'> {
  const emailNorm = row.identity.email === null ? null : normaliseEmail(row.identity.email);
  const match = matchUser(row.identity, await usersForIdentity(trx, app.id, row.identity.user_id, emailNorm));
  let user: ContactRow;
  let outcome: 'created' | 'updated' | 'unchanged';
  if (!match) {
    user = await createUser(trx, s, app.id, row.identity, { name: row.name }, 'csv');
    outcome = 'created';
  } else {
    user = match.user;
    const changes: Partial<ContactRow> = {};
    if (row.identity.user_id !== null && user.user_id === null) changes.user_id = row.identity.user_id;
    if (row.identity.email !== null && user.email !== row.identity.email) Object.assign(changes, { email: row.identity.email, email_norm: emailNorm });
    if (row.name !== undefined && row.name !== user.name) changes.name = row.name;
    const attrs = await trx.selectFrom('attributes').select(['key', 'value']).where('contact_id', '=', user.id).execute();
    const current = new Map(attrs.map((a) => [a.key, a.value]));
    const changedAttrs = Object.entries(row.attributes).filter(([k, v]) => current.get(k) !== JSON.stringify(v));
    if (Object.keys(changes).length === 0 && changedAttrs.length === 0) return 'unchanged';
    if (Object.keys(changes).length > 0) await updateContact(trx, user.id, { ...changes, updated_at: s.clock.now().toISOString() });
    user = { ...user, ...changes };
    row = { ...row, attributes: Object.fromEntries(changedAttrs) };
    outcome = 'updated';
  }
  if (Object.keys(row.attributes).length > 0) await setAttributes(trx, user.id, row.attributes);
  // R3/R4: imported users mark the messenger leads with their email; the merge waits for a ping or a bulk merge.
  await markLeadsMatchingUser(trx, app.id, user, 'csv');
  return outcome;
}
