/**
 * Bulk-merge benchmark (issue 5, "Performance"): `npm run bench:merge [-- --leads N]`.
 *
 * 1. Generates, in a temp SQLite file, one app with N messenger leads (each with 2 conversations,
 *    5 messages, 10 events as events rows + 3 event summaries, 5 attributes in the contact's JSON object), by direct batched
 *    inserts.
 * 2. Writes N users to a CSV file: 78% match one lead by email, 1% of leads are ambiguous (their
 *    email is shared by two users with different user_ids: 2% of the users), 20% match no lead.
 * 3. Imports the CSV with `importUsers` (the product path) in a child process: rows/s, peak RSS.
 *    Baseline: a batched plain INSERT of the same user rows into a copy of the leads database.
 * 4. Runs `bulkMerge` (the product path) in a child process: leads/s, peak RSS, and checks that no
 *    message, conversation or event was lost and that every message belongs to a live contact.
 *    Baseline: a hand-written set-based SQL merge of the same data on a copy of the database file,
 *    1,000 leads a transaction. Both end states are compared table by table.
 *
 * PostgreSQL: `--db sqlite|postgres|both` (or BENCH_DB; default sqlite). On PostgreSQL (BENCH_PG_URL,
 * default postgres://postgres@127.0.0.1:5432/test) each run works in fresh schemas
 * `bench_<time>_<random>` (made by the product's migrations, dropped at the end even on failure; see
 * lib/postgres.ts): the same data shape and seeds, generated with batched multi-row INSERTs through
 * `pg`; the same product import and merge (createParley with postgresUrl/postgresSchema); the
 * baselines on copies of the schema (INSERT … SELECT): multi-row plain INSERTs, and the set-based
 * SQL merge written with UPDATE … FROM joins. With both, SQLite runs first and each figure is printed
 * beside the other database's.
 *
 * Options: `--leads N` (or BENCH_LEADS; default 100,000), `--keep` (keep the temp folder, with a
 * copy of the generated leads: leads.db, or on PostgreSQL a schema a later run drops as stale),
 * `--import-batch N` and `--merge-batch N` (rows and leads per transaction in the product phases;
 * default: the product's own, 3,000 and 2,000),
 * `--profile` (CPU-profile the product import and merge; prints the top functions).
 * BENCH_PHASE_TIMEOUT (seconds; default 100, or 1,200 above 20,000 leads) bounds each product
 * phase: one that overruns is killed and its rate so far is reported, marked as not finished.
 * Internal: `--phase import|merge` runs one product phase in the child process.
 */
import { copyFileSync, createReadStream, existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createHash, randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import SQLite from 'better-sqlite3';
import { parse } from 'csv-parse';
import { createParley } from '../server-stub/server.ts';
import { createApp, findApp } from '../server-stub/storage/apps.ts';
import { importUsers } from '../server-stub/services/user-import.ts';
import { bulkMerge } from '../server-stub/services/bulk-merge.ts';
import { createIdGenerator, systemClock } from '../server-stub/ids.ts';
import { ChildTimeout, runChild, tellParent } from './lib/child.ts';
import { fmt, publish, watchdog, type BenchRow } from './lib/report.ts';
import { summariseProfile } from './lib/profile.ts';
import { benchDbs, createBenchSchema, DB_LABEL, insertRows, interleave, PG_URL, pgClient, postgresVersion, type BenchSchema } from './lib/postgres.ts';
import type pg from 'pg';

const { values: opts } = parseArgs({
  options: {
    leads: { type: 'string' },
    'import-batch': { type: 'string' },
    'merge-batch': { type: 'string' },
    keep: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    phase: { type: 'string' },
    db: { type: 'string' },
    'pg-schema': { type: 'string' },
    csv: { type: 'string' },
    app: { type: 'string' },
  },
  allowPositionals: false,
});

const MB = 1024 * 1024;
const BATCH = 1000;

// ---- product phases, each in its own child process so its peak memory is its own ----------------

interface PhaseResult {
  type: 'result';
  seconds: number;
  rssStartBytes: number;
  maxRssBytes: number;
  report: Record<string, number>;
}

interface PhaseProgress {
  type: 'progress';
  /** Rows imported, or leads merged. */
  done: number;
  seconds: number;
  rssStartBytes: number;
  maxRssBytes: number;
}

async function runPhase(phase: string, dbPath: string | undefined, pgSchema: string | undefined, appId: string, csvPath: string | undefined): Promise<void> {
  const database = pgSchema ? { postgresUrl: PG_URL, postgresSchema: pgSchema } : { sqlitePath: dbPath! };
  const parley = await createParley({ ...database, rateLimits: 'off', log: () => undefined, runWorker: false });
  const app = await findApp(parley.services.db, appId);
  if (!app) throw new Error(`no app ${appId}`);
  const rssStartBytes = process.memoryUsage().rss;
  const t0 = performance.now();
  let lastPrint = t0;
  const progress = (done: number, what: string) => {
    const now = performance.now();
    const seconds = (now - t0) / 1000;
    const message: PhaseProgress = { type: 'progress', done, seconds, rssStartBytes, maxRssBytes: process.resourceUsage().maxRSS * 1024 };
    process.send?.(message);
    if (now - lastPrint < 5000) return;
    lastPrint = now;
    process.stderr.write(`  ${phase}: ${done.toLocaleString('en-US')} ${what} in ${seconds.toFixed(0)} s, ${fmt(done / seconds, `${what}/s`)}, rss ${Math.round(process.memoryUsage().rss / MB)} MB\n`);
  };
  let report: Record<string, number>;
  if (phase === 'import') {
    const r = await importUsers(parley.services, app, createReadStream(csvPath!), { onProgress: (n) => progress(n, 'rows'), ...batchSize('BENCH_IMPORT_BATCH') });
    report = { created: r.created, updated: r.updated, unchanged: r.unchanged, failed: r.failed_count };
  } else {
    const r = await bulkMerge(parley.services, app, { onProgress: (p) => progress(p.merged, 'leads merged'), ...batchSize('BENCH_MERGE_BATCH') });
    report = { merged: r.merged, ambiguous: r.ambiguous, skipped: r.skipped, conversations_moved: r.conversations_moved, events_moved: r.events_moved };
  }
  const seconds = (performance.now() - t0) / 1000;
  const maxRssBytes = process.resourceUsage().maxRSS * 1024;
  await parley.close();
  const result: PhaseResult = { type: 'result', seconds, rssStartBytes, maxRssBytes, report };
  await tellParent(result);
}

/** A batch size given to the parent (`--import-batch`, `--merge-batch`), which the child phases inherit through the environment. */
function batchSize(variable: 'BENCH_IMPORT_BATCH' | 'BENCH_MERGE_BATCH'): { batchSize?: number } {
  const n = Number(process.env[variable]);
  return Number.isInteger(n) && n > 0 ? { batchSize: n } : {};
}
if (opts['import-batch']) process.env['BENCH_IMPORT_BATCH'] = opts['import-batch'];
if (opts['merge-batch']) process.env['BENCH_MERGE_BATCH'] = opts['merge-batch'];
if (!opts.phase && (opts['import-batch'] || opts['merge-batch'])) {
  console.log(`batch sizes: import ${opts['import-batch'] ?? 'default'}, merge ${opts['merge-batch'] ?? 'default'}`);
}

interface PhaseOutcome extends Omit<PhaseResult, 'type'> {
  finished: boolean;
  /** Rows imported or leads merged (from the last progress report when it did not finish). */
  done: number;
}

/** Runs a product phase in a child; one that overruns its budget is killed and its progress so far reported. */
async function productPhase(args: string[], budgetSeconds: number, nodeArgs: string[], doneOf: (r: PhaseResult) => number, env: Record<string, string> = {}): Promise<PhaseOutcome> {
  let last: PhaseProgress | undefined;
  try {
    const r = await runChild<PhaseResult>('merge.bench.ts', args, { timeoutMs: budgetSeconds * 1000, nodeArgs, env, onMessage: (m) => (last = m as PhaseProgress) });
    return { ...r, finished: true, done: doneOf(r) };
  } catch (error) {
    if (!(error instanceof ChildTimeout)) throw error;
    console.log(`  ${error.message}: killed (SIGKILL)`);
    return { finished: false, done: last?.done ?? 0, seconds: last?.seconds ?? budgetSeconds, rssStartBytes: last?.rssStartBytes ?? Number.NaN, maxRssBytes: last?.maxRssBytes ?? Number.NaN, report: {} };
  }
}

// ---- data set ------------------------------------------------------------------------------------

/** Deterministic pseudo-random numbers (mulberry32), so every run builds the same shape. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Shape {
  leads: number;
  /** Leads matched by exactly one user (users 0..unique-1 match leads 0..unique-1). */
  unique: number;
  /** Leads matched by two users (users unique..unique+2*ambiguous-1). */
  ambiguous: number;
  users: number;
}

function shapeFor(n: number): Shape {
  const unique = Math.round(n * 0.78);
  const ambiguous = Math.round(n * 0.01);
  return { leads: n, unique, ambiguous, users: n };
}

/** A lead's five attributes: one JSON object on its contact row, keys in order as the product writes them. */
const leadAttributes = (i: number, score: number) => JSON.stringify({
  city: ['Lyon', 'Porto', 'Turku', 'Gdańsk', 'Cork'][i % 5], lang: ['fr', 'pt', 'fi', 'pl', 'en'][i % 5], plan: 'trial', score, source: ['ads', 'search', 'social', 'direct'][i % 4],
});
const userAttributes = (u: { plan: string; company: string }) => JSON.stringify({ company: u.company, plan: u.plan });
const leadEmail = (i: number) => (i % 7 === 0 ? `Lead.${i}@Example.com` : `lead.${i}@example.com`);
const EVENTS: [string, number][] = [['page_view', 5], ['product_viewed', 3], ['added_to_cart', 2]];
const DAY = 86_400_000;

function generateLeads(dbPath: string, appId: string, shape: Shape): number {
  const db = new SQLite(dbPath);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  db.pragma('foreign_keys = OFF');
  const rnd = prng(42);
  const base = Date.now() - 60 * DAY;
  const ids = createIdGenerator(() => base);
  const contact = db.prepare(`INSERT INTO contacts (id, app_id, role, user_id, email, email_norm, name, created_via, created_at, updated_at, last_seen_at, attributes, event_summaries)
    VALUES (?, ?, 'lead', NULL, ?, ?, ?, 'messenger', ?, ?, ?, ?, ?)`);
  const visitor = db.prepare('INSERT INTO visitors (app_id, visitor_id, contact_id, created_at) VALUES (?, ?, ?, ?)');
  const conversation = db.prepare('INSERT INTO conversations (id, app_id, contact_id, client_id, created_at, updated_at, contact_read_at) VALUES (?, ?, ?, ?, ?, ?, ?)');
  const message = db.prepare('INSERT INTO messages (id, app_id, conversation_id, author_type, author_id, body, client_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
  const event = db.prepare('INSERT INTO events (id, app_id, contact_id, name, metadata, occurred_at) VALUES (?, ?, ?, ?, ?, ?)');
  const iso = (ms: number) => new Date(ms).toISOString();
  let rows = 0;
  const insertRange = db.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const t = base + Math.floor(rnd() * 50 * DAY);
      const id = ids('cnt');
      const email = leadEmail(i);
      const score = Math.floor(rnd() * 100);
      visitor.run(appId, randomUUID(), id, iso(t));
      // Two conversations, five messages: three in the first, two in the second.
      for (let c = 0; c < 2; c++) {
        const cid = ids('cnv');
        const ct = t + c * 600_000;
        const count = c === 0 ? 3 : 2;
        conversation.run(cid, appId, id, randomUUID(), iso(ct), iso(ct + count * 60_000), iso(ct + 60_000));
        for (let m = 0; m < count; m++) {
          const agent = m % 2 === 1;
          message.run(ids('msg'), appId, cid, agent ? 'agent' : 'contact', agent ? `agent_${appId}` : id,
            agent ? `Thanks for asking about order ${i}-${m}, let me check that for you.` : `Hello, a question about my order ${i}-${m}: when does it ship?`,
            agent ? null : randomUUID(), iso(ct + m * 60_000));
        }
      }
      // Ten events in three names, and their summaries on the contact (the merge moves the summaries).
      let k = 0;
      const summaries: Record<string, { count: number; first_at: string; last_at: string }> = {};
      for (const [name, n] of EVENTS) {
        const first = t + k * 120_000;
        for (let e = 0; e < n; e++, k++) event.run(ids('evt'), appId, id, name, e === 0 ? `{"path":"/p/${i}"}` : null, iso(t + k * 120_000));
        summaries[name] = { count: n, first_at: iso(first), last_at: iso(t + (k - 1) * 120_000) };
      }
      contact.run(id, appId, email, email.toLowerCase(), `Lead ${i}`, iso(t), iso(t + 3_600_000), iso(t + 3_600_000), leadAttributes(i, score), sortedJson(JSON.stringify(summaries)));
      rows += 1 + 1 + 2 + 5 + 10;
    }
  });
  for (let i = 0; i < shape.leads; i += 5000) insertRange(i, Math.min(shape.leads, i + 5000));
  db.close();
  return rows;
}

interface UserRow {
  user_id: string;
  email: string;
  name: string;
  plan: string;
  company: string;
}

function userRow(j: number, shape: Shape): UserRow {
  let email: string;
  if (j < shape.unique) email = j % 5 === 0 ? leadEmail(j).toUpperCase() : leadEmail(j);
  else if (j < shape.unique + 2 * shape.ambiguous) {
    const lead = shape.unique + Math.floor((j - shape.unique) / 2);
    email = (j - shape.unique) % 2 === 0 ? leadEmail(lead) : leadEmail(lead).toUpperCase();
  } else email = `customer.${j}@example.org`;
  return { user_id: `usr-${j}`, email, name: j % 10 === 0 ? `User ${j}, Esq.` : `User ${j}`, plan: ['free', 'pro', 'team'][j % 3]!, company: `Company ${j % 977}` };
}

/** The users in a shuffled order (a CRM export is not sorted like our leads). */
function userOrder(shape: Shape): number[] {
  const order = Array.from({ length: shape.users }, (_, j) => j);
  const rnd = prng(7);
  for (let i = order.length - 1; i > 0; i--) {
    const k = Math.floor(rnd() * (i + 1));
    [order[i], order[k]] = [order[k]!, order[i]!];
  }
  return order;
}

function writeCsv(path: string, shape: Shape): void {
  const q = (s: string) => (/[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  const lines = ['user_id,email,name,plan,company'];
  for (const j of userOrder(shape)) {
    const u = userRow(j, shape);
    lines.push([u.user_id, u.email, q(u.name), u.plan, q(u.company)].join(','));
  }
  writeFileSync(path, `${lines.join('\r\n')}\r\n`);
}

/** Users that already have a `page_view` summary, so the merge must combine rather than move it. */
const USER_PAGE_VIEWS = JSON.stringify({ page_view: { count: 2, first_at: '2020-01-01T00:00:00.000Z', last_at: '2020-01-02T00:00:00.000Z' } });
function addUserEvents(dbPath: string, appId: string): number {
  const db = new SQLite(dbPath);
  const r = db.prepare(`UPDATE contacts SET event_summaries = ?
    WHERE app_id = ? AND role = 'user' AND created_via = 'csv' AND CAST(substr(user_id, 5) AS INTEGER) % 10 = 0`).run(USER_PAGE_VIEWS, appId);
  db.close();
  return r.changes;
}

// ---- baselines -------------------------------------------------------------------------------------

function openLikeProduct(path: string): SQLite.Database {
  const db = new SQLite(path);
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 5000');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  return db;
}

/** Baseline (a): the same user rows (contact with its two attributes), batched plain INSERTs. */
function plainInsert(dbPath: string, appId: string, shape: Shape): number {
  const db = openLikeProduct(dbPath);
  const ids = createIdGenerator();
  const contact = db.prepare(`INSERT INTO contacts (id, app_id, role, user_id, email, email_norm, name, created_via, created_at, updated_at, last_seen_at, attributes)
    VALUES (?, ?, 'user', ?, ?, ?, ?, 'csv', ?, ?, ?, ?)`);
  const order = userOrder(shape);
  const t0 = performance.now();
  const batch = db.transaction((from: number, to: number) => {
    const now = new Date().toISOString();
    for (let k = from; k < to; k++) {
      const u = userRow(order[k]!, shape);
      const id = ids('cnt');
      contact.run(id, appId, u.user_id, u.email, u.email.trim().toLowerCase(), u.name, now, now, now, userAttributes(u));
    }
  });
  for (let k = 0; k < shape.users; k += BATCH) batch(k, Math.min(shape.users, k + BATCH));
  const seconds = (performance.now() - t0) / 1000;
  db.close();
  return seconds;
}

/** How fast csv-parse alone reads the file with the import's options (where the import's floor is). */
async function parseOnly(csvPath: string): Promise<{ seconds: number; records: number }> {
  const t0 = performance.now();
  let records = 0;
  const parser = createReadStream(csvPath).pipe(parse({ bom: true, relax_column_count: true, skip_empty_lines: true, info: true, raw: true, trim: true }));
  for await (const _ of parser) records++;
  return { seconds: (performance.now() - t0) / 1000, records: records - 1 };
}

interface SqlMergeResult {
  seconds: number;
  merged: number;
  ambiguous: number;
  conversations_moved: number;
  events_moved: number;
  /** Where the baseline's time went, statement by statement. */
  breakdown: string;
}

/**
 * Baseline (b): the same bulk merge written by hand as set-based SQL, 1,000 leads a transaction:
 * classify all leads in one query, then per batch claim the leads, write the audit rows (with the
 * counts moved), move conversations, combine event summaries (upsert), copy missing attributes
 * (json_patch of the lead's object into the user's), unbind the leads' visitor cookies (deleted: since a0e68b5 only a
 * cookie merge carries them to the user; a bulk merge does not).
 */
function sqlMerge(dbPath: string, appId: string): SqlMergeResult {
  const db = openLikeProduct(dbPath);
  const t0 = performance.now();
  db.exec(`CREATE TEMP TABLE pairs (seq INTEGER PRIMARY KEY, lead_id TEXT NOT NULL, user_id TEXT NOT NULL);
    CREATE TEMP TABLE batch (lead_id TEXT PRIMARY KEY, user_id TEXT NOT NULL);
    CREATE INDEX temp.batch_user ON batch (user_id);`);
  // Written so that SQLite drives every statement from the (small) batch through an index: the users
  // are grouped by email once, and per batch `IN (SELECT lead_id FROM batch)` picks the rows.
  const users = `SELECT email_norm, min(id) AS user_id, count(*) AS n FROM contacts
    WHERE app_id = ? AND role = 'user' AND merged_into IS NULL AND email_norm IS NOT NULL GROUP BY email_norm`;
  const leads = `FROM contacts l JOIN u ON u.email_norm = l.email_norm
    WHERE l.app_id = ? AND l.role = 'lead' AND l.created_via = 'messenger' AND l.merged_into IS NULL`;
  db.prepare(`INSERT INTO pairs (lead_id, user_id) WITH u AS (${users}) SELECT l.id, u.user_id ${leads} AND u.n = 1 ORDER BY l.id`).run(appId, appId);
  const ambiguous = (db.prepare(`WITH u AS (${users}) SELECT count(*) AS n ${leads} AND u.n > 1`).get(appId, appId) as { n: number }).n;
  const total = (db.prepare('SELECT count(*) AS n FROM pairs').get() as { n: number }).n;

  const inBatch = 'IN (SELECT lead_id FROM batch)';
  const userOf = (col: string) => `(SELECT user_id FROM batch WHERE lead_id = ${col})`;
  const fill = db.prepare('INSERT INTO batch (lead_id, user_id) SELECT lead_id, user_id FROM pairs WHERE seq > ? AND seq <= ?');
  // Last in the batch: the tombstones' attributes and summaries are emptied once everything is read.
  const claim = db.prepare(`UPDATE contacts SET merged_into = ${userOf('contacts.id')}, merged_at = ?, merge_into_id = NULL, merge_trigger = NULL, updated_at = ?,
    attributes = '{}', event_summaries = '{}' WHERE id ${inBatch} AND merged_into IS NULL`);
  const audit = db.prepare(`INSERT INTO merges (id, app_id, from_id, into_id, trigger, conversations_moved, events_moved, attributes_moved, created_at)
    SELECT 'mrg_' || b.lead_id, ?, b.lead_id, b.user_id, 'bulk',
      (SELECT count(*) FROM conversations c WHERE c.contact_id = b.lead_id),
      (SELECT coalesce(sum(json_extract(j.value, '$.count')), 0) FROM json_each((SELECT event_summaries FROM contacts WHERE id = b.lead_id)) j),
      (SELECT count(*) FROM json_each((SELECT attributes FROM contacts WHERE id = b.lead_id)) a
        WHERE a.key NOT IN (SELECT key FROM json_each((SELECT attributes FROM contacts WHERE id = b.user_id)))),
      ? FROM batch b`);
  const conversations = db.prepare(`UPDATE conversations SET contact_id = ${userOf('conversations.contact_id')} WHERE contact_id ${inBatch}`);
  // The user's and the lead's summaries as rows (json_each), combined per name, back into one object.
  const summaryRows = (source: string) => `SELECT j.key AS k, json_extract(j.value, '$.count') AS c, json_extract(j.value, '$.first_at') AS f, json_extract(j.value, '$.last_at') AS l FROM ${source}`;
  const events = db.prepare(`UPDATE contacts SET event_summaries = (
      SELECT json_group_object(k, json_object('count', c, 'first_at', f, 'last_at', l)) FROM (
        SELECT k, sum(c) AS c, min(f) AS f, max(l) AS l FROM (
          ${summaryRows('json_each(contacts.event_summaries) j')}
          UNION ALL ${summaryRows('batch b JOIN contacts ld ON ld.id = b.lead_id, json_each(ld.event_summaries) j WHERE b.user_id = contacts.id')}
        ) GROUP BY k))
    WHERE id IN (SELECT user_id FROM batch)`);
  // json_patch(lead, user): the user's values win, the lead's other keys are added. (It would drop a
  // user's key whose value is JSON null; this data set has none. One lead per user here, as the
  // classification above guarantees.)
  const attributes = db.prepare(`UPDATE contacts SET attributes = (SELECT json_patch(l.attributes, contacts.attributes) FROM batch b JOIN contacts l ON l.id = b.lead_id WHERE b.user_id = contacts.id)
    WHERE id IN (SELECT user_id FROM batch)`);
  const visitors = db.prepare(`DELETE FROM visitors WHERE contact_id ${inBatch}`);
  const clear = db.prepare('DELETE FROM batch');
  const moved = db.prepare('SELECT coalesce(sum(conversations_moved), 0) AS c, coalesce(sum(events_moved), 0) AS e FROM merges WHERE from_id IN (SELECT lead_id FROM batch)');

  let merged = 0;
  let conversationsMoved = 0;
  let eventsMoved = 0;
  const spent = new Map<string, number>();
  const timed = <T>(what: string, f: () => T): T => {
    const t = performance.now();
    const out = f();
    spent.set(what, (spent.get(what) ?? 0) + performance.now() - t);
    return out;
  };
  spent.set('classify', performance.now() - t0);
  const runBatch = db.transaction((from: number, to: number) => {
    const now = new Date().toISOString();
    timed('fill batch', () => fill.run(from, to));
    timed('audit rows', () => audit.run(appId, now));
    const m = moved.get() as { c: number; e: number };
    conversationsMoved += m.c;
    eventsMoved += m.e;
    timed('conversations', () => conversations.run());
    timed('event summaries', () => events.run());
    timed('attributes', () => attributes.run());
    timed('visitors', () => visitors.run());
    merged += timed('claim leads', () => claim.run(now, now).changes);
    clear.run();
  });
  for (let seq = 0; seq < total; seq += BATCH) timed('whole batches (incl. commit)', () => runBatch(seq, seq + BATCH));
  const seconds = (performance.now() - t0) / 1000;
  db.close();
  const breakdown = [...spent].map(([k, ms]) => `${k} ${(ms / 1000).toFixed(2)} s`).join(', ');
  return { seconds, merged, ambiguous, conversations_moved: conversationsMoved, events_moved: eventsMoved, breakdown };
}

// ---- checks ----------------------------------------------------------------------------------------

interface Census {
  messages: number;
  conversations: number;
  eventCount: number;
  /** Messages whose conversation is missing or owned by a merged/unknown contact or a visitor. */
  strayMessages: number;
  mergedLeads: number;
  audits: number;
  users: number;
}

function census(dbPath: string): Census {
  const db = new SQLite(dbPath, { readonly: true });
  const one = (q: string) => Number((db.prepare(q).get() as { n: number | null }).n ?? 0);
  const c: Census = {
    messages: one('SELECT count(*) AS n FROM messages'),
    conversations: one('SELECT count(*) AS n FROM conversations'),
    eventCount: one("SELECT sum(json_extract(j.value, '$.count')) AS n FROM contacts, json_each(contacts.event_summaries) j"),
    strayMessages: one(`SELECT count(*) AS n FROM messages m LEFT JOIN conversations c ON c.id = m.conversation_id LEFT JOIN contacts k ON k.id = c.contact_id
      WHERE k.id IS NULL OR k.merged_into IS NOT NULL OR k.role NOT IN ('user', 'lead')`),
    mergedLeads: one('SELECT count(*) AS n FROM contacts WHERE merged_into IS NOT NULL'),
    audits: one('SELECT count(*) AS n FROM merges'),
    users: one(`SELECT count(*) AS n FROM contacts WHERE role = 'user'`),
  };
  db.close();
  return c;
}

/** Per-table hashes of what a merge decides, to tell whether product and baseline did the same work. */
function mergeState(dbPath: string): Record<string, string> {
  const db = new SQLite(dbPath, { readonly: true });
  const out: Record<string, string> = {};
  for (const [table, q] of Object.entries(MERGE_STATE_QUERIES)) out[table] = hashRows(table, db.prepare(q).iterate() as Iterable<Record<string, unknown>>);
  db.close();
  return out;
}

/** Attribute and event summary objects compare by content: key order and spacing differ between JSON writers. */
function hashRows(table: string, rows: Iterable<Record<string, unknown>>): string {
  const hash = createHash('sha256');
  for (const row of rows) {
    const r = table === 'attributes' || table === 'event_summaries' ? { id: row['id'], [table]: sortedJson(String(row[table])) } : row;
    hash.update(`${JSON.stringify(r)}\n`);
  }
  return hash.digest('hex').slice(0, 16);
}

function sortedJson(text: string): string {
  const sorted = (v: unknown): unknown => (v !== null && typeof v === 'object' && !Array.isArray(v)
    ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted((v as Record<string, unknown>)[k])])) : v);
  return JSON.stringify(sorted(JSON.parse(text)));
}

function copyDb(from: string, to: string): void {
  // Every connection is closed here, so the WAL was checkpointed into the main file.
  for (const suffix of ['-wal', '-shm']) rmSync(`${to}${suffix}`, { force: true });
  copyFileSync(from, to);
  for (const suffix of ['-wal', '-shm']) {
    try {
      if (statSync(`${from}${suffix}`).size > 0) copyFileSync(`${from}${suffix}`, `${to}${suffix}`);
    } catch {
      // no WAL file: nothing to copy
    }
  }
}

// ---- main ------------------------------------------------------------------------------------------

interface DbRun {
  rows: BenchRow[];
  notes: string[];
  failures: string[];
}

async function runSqlite(n: number, budget: number): Promise<DbRun> {
  const shape = shapeFor(n);
  const dir = mkdtempSync(join(tmpdir(), 'parley-bench-merge-'));
  let dbPath = join(dir, 'parley.db');
  const insertPath = join(dir, 'insert-baseline.db');
  const sqlPath = join(dir, 'sql-baseline.db');
  const csvPath = join(dir, 'users.csv');
  const profDir = join(dir, 'profiles');
  const nodeArgs = (name: string) => (opts.profile ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`, `--cpu-prof-name=${name}.cpuprofile`] : []);
  const count = (x: number) => x.toLocaleString('en-US');
  console.log(`merge bench on SQLite: ${count(n)} leads, ${count(shape.users)} users (${count(shape.unique)} match one lead, ${count(shape.ambiguous)} leads ambiguous), phase budget ${budget} s, in ${dir}`);

  // Schema (the product's migrations) and the app.
  const setup = await createParley({ sqlitePath: dbPath, rateLimits: 'off', log: () => undefined, runWorker: false });
  const app = await createApp(setup.services.db, systemClock, { name: 'Bench', allowed_origins: ['*'] });
  await setup.close();

  let t = performance.now();
  const generated = generateLeads(dbPath, app.id, shape);
  console.log(`  generated ${count(generated)} rows in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  t = performance.now();
  writeCsv(csvPath, shape);
  console.log(`  wrote ${csvPath} (${(statSync(csvPath).size / MB).toFixed(1)} MB) in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  copyDb(dbPath, insertPath);
  // With --keep, the generated leads are kept too, so a change can be tried on the same data.
  if (opts.keep) copyDb(dbPath, join(dir, 'leads.db'));

  // Import: product, then the baselines.
  console.log('  import (product: importUsers, child process)…');
  const imp = await productPhase(['--phase', 'import', '--db', dbPath, '--app', app.id, '--csv', csvPath], budget, nodeArgs('import'), (r) => r.report['created']! + r.report['updated']! + r.report['unchanged']!);
  const importRate = imp.done / imp.seconds;
  console.log(`  import: ${imp.finished ? '' : 'DID NOT FINISH, '}${count(imp.done)} rows in ${imp.seconds.toFixed(1)} s, ${fmt(importRate, 'rows/s')} ${JSON.stringify(imp.report)}`);
  console.log('  import baseline (plain batched INSERT into a copy)…');
  const insertSeconds = plainInsert(insertPath, app.id, shape);
  const insertRate = shape.users / insertSeconds;
  const parsed = await parseOnly(csvPath);
  console.log(`  plain INSERT: ${insertSeconds.toFixed(1)} s, ${fmt(insertRate, 'rows/s')}; csv-parse alone: ${fmt(parsed.records / parsed.seconds, 'rows/s')}`);
  if (imp.finished) rmSync(insertPath, { force: true });
  else {
    // The merge still needs the users: go on from the baseline's copy (same leads and users, no R4 marks,
    // which the bulk merge does not read).
    console.log('  the import did not finish: the merge runs on the plain-INSERT copy instead');
    dbPath = insertPath;
  }

  const userEvents = addUserEvents(dbPath, app.id);
  const before = census(dbPath);
  copyDb(dbPath, sqlPath);

  // Merge: product, then the set-based SQL baseline on the copy.
  console.log('  bulk merge (product: bulkMerge, child process)…');
  const mrg = await productPhase(['--phase', 'merge', '--db', dbPath, '--app', app.id], budget, nodeArgs('merge'), (r) => r.report['merged']!);
  const mergeRate = mrg.done / mrg.seconds;
  console.log(`  merge: ${mrg.finished ? '' : 'DID NOT FINISH, '}${count(mrg.done)} leads merged in ${mrg.seconds.toFixed(1)} s, ${fmt(mergeRate, 'leads/s')} ${JSON.stringify(mrg.report)}`);
  console.log('  merge baseline (set-based SQL, 1,000 leads a transaction, on a copy)…');
  const base = sqlMerge(sqlPath, app.id);
  const baseRate = base.merged / base.seconds;
  console.log(`  SQL merge: ${base.seconds.toFixed(1)} s, ${fmt(baseRate, 'leads/s')}, ${JSON.stringify({ ...base, seconds: undefined, breakdown: undefined })}\n  SQL merge time: ${base.breakdown}`);

  // Checks: nothing lost, the expected counts, and the same end state as the baseline.
  const after = census(dbPath);
  const baseAfter = census(sqlPath);
  const productState = mergeState(dbPath);
  const baselineState = mergeState(sqlPath);
  const differing = Object.keys(productState).filter((k) => productState[k] !== baselineState[k]);
  const failures: string[] = [];
  const unfinished: string[] = [];
  const expect = (ok: boolean, what: string) => {
    if (!ok) failures.push(what);
  };
  if (imp.finished) expect(imp.report['created'] === shape.users && imp.report['failed'] === 0, `import created ${imp.report['created']} of ${shape.users} users, ${imp.report['failed']} failed`);
  else unfinished.push(`the product import did not finish within ${budget} s (${count(imp.done)} of ${count(shape.users)} rows); the merge ran on the plain-INSERT copy`);
  // Conservation holds even for a merge killed midway (R12: each batch is all or nothing).
  expect(after.messages === before.messages, `messages before ${before.messages}, after ${after.messages}`);
  expect(after.conversations === before.conversations, `conversations before ${before.conversations}, after ${after.conversations}`);
  expect(after.eventCount === before.eventCount, `event occurrences before ${before.eventCount}, after ${after.eventCount}`);
  expect(after.strayMessages === 0, `${after.strayMessages} messages not owned by a live user or lead`);
  expect(after.mergedLeads === after.audits, `${after.mergedLeads} tombstones but ${after.audits} audit rows`);
  if (mrg.finished) {
    expect(mrg.report['merged'] === shape.unique, `merged ${mrg.report['merged']}, expected ${shape.unique}`);
    expect(mrg.report['ambiguous'] === shape.ambiguous, `ambiguous ${mrg.report['ambiguous']}, expected ${shape.ambiguous}`);
    expect(mrg.report['conversations_moved'] === 2 * shape.unique, `conversations_moved ${mrg.report['conversations_moved']}, expected ${2 * shape.unique}`);
    expect(mrg.report['events_moved'] === 10 * shape.unique, `events_moved ${mrg.report['events_moved']}, expected ${10 * shape.unique}`);
    expect(after.mergedLeads === shape.unique, `${after.mergedLeads} tombstones, expected ${shape.unique}`);
    expect(differing.length === 0, `product and SQL baseline end states differ in: ${differing.join(', ')}`);
  } else unfinished.push(`the product merge did not finish within ${budget} s (${count(mrg.done)} of ${count(shape.unique)} leads merged, killed with SIGKILL); the conservation checks ran on what it left`);
  expect(base.merged === shape.unique && baseAfter.messages === before.messages && baseAfter.strayMessages === 0, `SQL baseline merged ${base.merged}, ${baseAfter.strayMessages} stray messages`);

  const peakRss = Math.max(imp.maxRssBytes, mrg.maxRssBytes) / MB;
  const dnf = (o: PhaseOutcome) => (o.finished ? '' : ' (DID NOT FINISH: rate so far)');
  const rows: BenchRow[] = [
    { bench: 'merge', figure: `CSV import (importUsers), ${count(shape.users)} users${dnf(imp)}`, value: importRate, unit: 'rows/s', higherIsBetter: true,
      baseline: { label: 'batched plain INSERT', value: insertRate }, target: '≥ 50,000 rows/s', targetMin: 50_000,
      note: `${count(imp.done)} rows in ${imp.seconds.toFixed(1)} s (plain INSERT: ${insertSeconds.toFixed(1)} s); each row carries 2 attributes and marks the matching lead (R4); csv-parse alone reads ${fmt(parsed.records / parsed.seconds, 'rows/s')}` },
    { bench: 'merge', figure: `bulk merge (bulkMerge), ${count(shape.unique)} of ${count(n)} leads${dnf(mrg)}`, value: mergeRate, unit: 'leads/s', higherIsBetter: true,
      baseline: { label: 'set-based SQL, 1,000 leads/tx', value: baseRate }, target: '≥ 15,000 leads/s', targetMin: 15_000,
      note: `${count(mrg.done)} leads merged in ${mrg.seconds.toFixed(1)} s (SQL baseline ${base.seconds.toFixed(1)} s); ${count(userEvents)} users had an event summary to combine` },
    { bench: 'merge', figure: `peak RSS, import child${dnf(imp)}`, value: imp.maxRssBytes / MB, unit: 'MB', higherIsBetter: false,
      baseline: { label: 'same child, db open, before work', value: imp.rssStartBytes / MB }, target: '< 300 MB', targetMax: 300 },
    { bench: 'merge', figure: `peak RSS, merge child${dnf(mrg)}`, value: mrg.maxRssBytes / MB, unit: 'MB', higherIsBetter: false,
      baseline: { label: 'same child, db open, before work', value: mrg.rssStartBytes / MB }, target: '< 300 MB', targetMax: 300 },
    { bench: 'merge', figure: 'messages lost or orphaned by the merge', value: before.messages - after.messages + after.strayMessages, unit: '', higherIsBetter: false,
      target: '0', targetMax: 0, note: `messages before ${count(before.messages)}, after ${count(after.messages)}; every message's conversation owned by a live user/lead: ${after.strayMessages === 0 ? 'yes' : `no (${after.strayMessages})`}` },
  ];
  const extra = [
    `merge: data ${count(n)} leads × (2 conversations, 5 messages, 10 events in 3 summaries, 5 attributes); ${count(shape.users)} users in CSV (user_id, email, name, plan, company)`,
    `merge: peak RSS ${peakRss.toFixed(0)} MB (max of both children; Node + tsx + the database open ≈ ${(mrg.rssStartBytes / MB).toFixed(0)} MB before any work)`,
    mrg.finished ? `merge: end state identical to the SQL baseline (contacts, conversations, event_summaries, attributes, visitors, merges): ${differing.length === 0 ? 'yes' : `NO, differs in ${differing.join(', ')}`}` : 'merge: end state not compared with the SQL baseline (the product merge did not finish)',
    ...unfinished.map((u) => `merge: ${u}`),
  ];
  if (opts.profile) {
    for (const f of readdirSync(profDir)) {
      console.log(`\nCPU profile ${f} (SQLite):`);
      for (const line of summariseProfile(join(profDir, f))) console.log(`  ${line}`);
    }
  }
  if (opts.keep) console.log(`\nkept ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
  return { rows: rows.map((r) => ({ ...r, db: 'SQLite' })), notes: extra.slice(1).map((e) => e.replace(/^merge: /, 'merge (SQLite): ')), failures };
}

// ---- PostgreSQL ------------------------------------------------------------------------------------

const CENSUS_QUERIES: Record<keyof Census, string> = {
  messages: 'SELECT count(*) AS n FROM messages',
  conversations: 'SELECT count(*) AS n FROM conversations',
  eventCount: "SELECT sum((j.value->>'count')::bigint) AS n FROM contacts, jsonb_each(contacts.event_summaries::jsonb) j",
  strayMessages: `SELECT count(*) AS n FROM messages m LEFT JOIN conversations c ON c.id = m.conversation_id LEFT JOIN contacts k ON k.id = c.contact_id
    WHERE k.id IS NULL OR k.merged_into IS NOT NULL OR k.role NOT IN ('user', 'lead')`,
  mergedLeads: 'SELECT count(*) AS n FROM contacts WHERE merged_into IS NOT NULL',
  audits: 'SELECT count(*) AS n FROM merges',
  users: `SELECT count(*) AS n FROM contacts WHERE role = 'user'`,
};

const MERGE_STATE_QUERIES: Record<string, string> = {
  contacts: 'SELECT id, merged_into, merge_into_id, merge_trigger FROM contacts ORDER BY id',
  conversations: 'SELECT id, contact_id FROM conversations ORDER BY id',
  event_summaries: 'SELECT id, event_summaries FROM contacts ORDER BY id',
  attributes: 'SELECT id, attributes FROM contacts ORDER BY id',
  visitors: 'SELECT app_id, visitor_id, contact_id FROM visitors ORDER BY app_id, visitor_id',
  merges: 'SELECT from_id, into_id, trigger, conversations_moved, events_moved, attributes_moved FROM merges ORDER BY from_id',
};

async function withPg<T>(schema: string, f: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = await pgClient(schema);
  try {
    return await f(c);
  } finally {
    await c.end();
  }
}

const pgCensus = (schema: string): Promise<Census> => withPg(schema, async (c) => {
  const out = {} as Census;
  for (const [k, q] of Object.entries(CENSUS_QUERIES)) out[k as keyof Census] = Number((await c.query<{ n: string | null }>(q)).rows[0]!.n ?? 0);
  return out;
});

const pgMergeState = (schema: string): Promise<Record<string, string>> => withPg(schema, async (c) => {
  const out: Record<string, string> = {};
  for (const [table, q] of Object.entries(MERGE_STATE_QUERIES)) out[table] = hashRows(table, (await c.query(q)).rows);
  return out;
});

/** The same data as generateLeads (same shape and seeds), as batched multi-row INSERTs, one transaction per 1,000 leads. */
async function generateLeadsPg(schema: string, appId: string, shape: Shape): Promise<number> {
  return withPg(schema, async (c) => {
    await c.query('SET synchronous_commit = off');
    const rnd = prng(42);
    const base = Date.now() - 60 * DAY;
    const ids = createIdGenerator(() => base);
    const iso = (ms: number) => new Date(ms).toISOString();
    let rows = 0;
    for (let from = 0; from < shape.leads; from += BATCH) {
      const t: Record<string, unknown[][]> = { contacts: [], visitors: [], conversations: [], messages: [], events: [] };
      for (let i = from; i < Math.min(shape.leads, from + BATCH); i++) {
        const at = base + Math.floor(rnd() * 50 * DAY);
        const id = ids('cnt');
        const email = leadEmail(i);
        const score = Math.floor(rnd() * 100);
        t['visitors']!.push([appId, randomUUID(), id, iso(at)]);
        for (let k = 0; k < 2; k++) {
          const cid = ids('cnv');
          const ct = at + k * 600_000;
          const count = k === 0 ? 3 : 2;
          t['conversations']!.push([cid, appId, id, randomUUID(), iso(ct), iso(ct + count * 60_000), iso(ct + 60_000)]);
          for (let m = 0; m < count; m++) {
            const agent = m % 2 === 1;
            t['messages']!.push([ids('msg'), appId, cid, agent ? 'agent' : 'contact', agent ? `agent_${appId}` : id,
              agent ? `Thanks for asking about order ${i}-${m}, let me check that for you.` : `Hello, a question about my order ${i}-${m}: when does it ship?`,
              agent ? null : randomUUID(), iso(ct + m * 60_000)]);
          }
        }
        let k = 0;
        const summaries: Record<string, { count: number; first_at: string; last_at: string }> = {};
        for (const [name, n] of EVENTS) {
          const first = at + k * 120_000;
          for (let e = 0; e < n; e++, k++) t['events']!.push([ids('evt'), appId, id, name, e === 0 ? `{"path":"/p/${i}"}` : null, iso(at + k * 120_000)]);
          summaries[name] = { count: n, first_at: iso(first), last_at: iso(at + (k - 1) * 120_000) };
        }
        t['contacts']!.push([id, appId, 'lead', null, email, email.toLowerCase(), `Lead ${i}`, 'messenger', iso(at), iso(at + 3_600_000), iso(at + 3_600_000), leadAttributes(i, score), sortedJson(JSON.stringify(summaries))]);
        rows += 1 + 1 + 2 + 5 + 10;
      }
      await c.query('BEGIN');
      await insertRows(c, 'contacts', ['id', 'app_id', 'role', 'user_id', 'email', 'email_norm', 'name', 'created_via', 'created_at', 'updated_at', 'last_seen_at', 'attributes', 'event_summaries'], t['contacts']!);
      await insertRows(c, 'visitors', ['app_id', 'visitor_id', 'contact_id', 'created_at'], t['visitors']!);
      await insertRows(c, 'conversations', ['id', 'app_id', 'contact_id', 'client_id', 'created_at', 'updated_at', 'contact_read_at'], t['conversations']!);
      await insertRows(c, 'messages', ['id', 'app_id', 'conversation_id', 'author_type', 'author_id', 'body', 'client_id', 'created_at'], t['messages']!);
      await insertRows(c, 'events', ['id', 'app_id', 'contact_id', 'name', 'metadata', 'occurred_at'], t['events']!);
      await c.query('COMMIT');
    }
    await c.query('ANALYZE');
    return rows;
  });
}

/** Fresh schema with the product's migrations, then `tables` copied from `from` (server-side INSERT … SELECT). */
async function pgCopy(from: string, tables: readonly string[]): Promise<BenchSchema> {
  const to = await createBenchSchema();
  try {
    const setup = await createParley({ postgresUrl: PG_URL, postgresSchema: to.name, rateLimits: 'off', log: () => undefined, runWorker: false });
    await setup.close();
    await withPg(to.name, async (c) => {
      for (const t of tables) await c.query(`INSERT INTO ${to.name}.${t} SELECT * FROM ${from}.${t}`);
      await c.query('ANALYZE');
    });
    return to;
  } catch (error) {
    await to.drop();
    throw error;
  }
}

/** Baseline (a) on PostgreSQL: the same user rows (contact with its 2 attributes), multi-row INSERTs, 1,000 users a transaction. */
async function plainInsertPg(schema: string, appId: string, shape: Shape): Promise<number> {
  return withPg(schema, async (c) => {
    const ids = createIdGenerator();
    const order = userOrder(shape);
    const t0 = performance.now();
    for (let from = 0; from < shape.users; from += BATCH) {
      const now = new Date().toISOString();
      const contacts: unknown[][] = [];
      for (let k = from; k < Math.min(shape.users, from + BATCH); k++) {
        const u = userRow(order[k]!, shape);
        const id = ids('cnt');
        contacts.push([id, appId, 'user', u.user_id, u.email, u.email.trim().toLowerCase(), u.name, 'csv', now, now, now, userAttributes(u)]);
      }
      await c.query('BEGIN');
      await insertRows(c, 'contacts', ['id', 'app_id', 'role', 'user_id', 'email', 'email_norm', 'name', 'created_via', 'created_at', 'updated_at', 'last_seen_at', 'attributes'], contacts);
      await c.query('COMMIT');
    }
    return (performance.now() - t0) / 1000;
  });
}

/** Baseline (b) on PostgreSQL: sqlMerge's set-based merge, written with UPDATE … FROM / DELETE … USING joins on the batch, 1,000 leads a transaction. */
async function sqlMergePg(schema: string, appId: string): Promise<SqlMergeResult> {
  return withPg(schema, async (c) => {
    const t0 = performance.now();
    await c.query(`CREATE TEMP TABLE pairs (seq bigserial PRIMARY KEY, lead_id text NOT NULL, user_id text NOT NULL)`);
    await c.query(`CREATE TEMP TABLE batch (lead_id text PRIMARY KEY, user_id text NOT NULL)`);
    const users = `SELECT email_norm, min(id) AS user_id, count(*) AS n FROM contacts
      WHERE app_id = $1 AND role = 'user' AND merged_into IS NULL AND email_norm IS NOT NULL GROUP BY email_norm`;
    const leads = `FROM contacts l JOIN u ON u.email_norm = l.email_norm
      WHERE l.app_id = $1 AND l.role = 'lead' AND l.created_via = 'messenger' AND l.merged_into IS NULL`;
    await c.query(`INSERT INTO pairs (lead_id, user_id) WITH u AS (${users}) SELECT l.id, u.user_id ${leads} AND u.n = 1 ORDER BY l.id`, [appId]);
    const ambiguous = Number((await c.query<{ n: string }>(`WITH u AS (${users}) SELECT count(*) AS n ${leads} AND u.n > 1`, [appId])).rows[0]!.n);
    const total = Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM pairs')).rows[0]!.n);
    await c.query('ANALYZE pairs');
    const spent = new Map<string, number>([['classify', performance.now() - t0]]);
    const timed = async <T>(what: string, f: () => Promise<T>): Promise<T> => {
      const t = performance.now();
      const out = await f();
      spent.set(what, (spent.get(what) ?? 0) + performance.now() - t);
      return out;
    };
    let merged = 0;
    let conversationsMoved = 0;
    let eventsMoved = 0;
    for (let seq = 0; seq < total; seq += BATCH) {
      await timed('whole batches (incl. commit)', async () => {
        const now = new Date().toISOString();
        await c.query('BEGIN');
        await timed('fill batch', () => c.query('INSERT INTO batch (lead_id, user_id) SELECT lead_id, user_id FROM pairs WHERE seq > $1 AND seq <= $2', [seq, seq + BATCH]));
        await timed('audit rows', () => c.query(`INSERT INTO merges (id, app_id, from_id, into_id, trigger, conversations_moved, events_moved, attributes_moved, created_at)
          SELECT 'mrg_' || b.lead_id, $1, b.lead_id, b.user_id, 'bulk',
            (SELECT count(*) FROM conversations c WHERE c.contact_id = b.lead_id),
            (SELECT coalesce(sum((j.value->>'count')::bigint), 0) FROM jsonb_each((SELECT event_summaries::jsonb FROM contacts WHERE id = b.lead_id)) j),
            (SELECT count(*) FROM jsonb_object_keys((SELECT attributes::jsonb FROM contacts WHERE id = b.lead_id)) k
              WHERE NOT (SELECT attributes::jsonb FROM contacts WHERE id = b.user_id) ? k),
            $2 FROM batch b`, [appId, now]));
        const m = (await c.query<{ c: string; e: string }>('SELECT coalesce(sum(conversations_moved), 0) AS c, coalesce(sum(events_moved), 0) AS e FROM merges WHERE from_id IN (SELECT lead_id FROM batch)')).rows[0]!;
        conversationsMoved += Number(m.c);
        eventsMoved += Number(m.e);
        await timed('conversations', () => c.query('UPDATE conversations c SET contact_id = b.user_id FROM batch b WHERE c.contact_id = b.lead_id'));
        // The user's and the lead's summaries as rows (jsonb_each), combined per name, back into one object.
        const summaryRows = (source: string) => `SELECT j.key AS k, (j.value->>'count')::bigint AS c, j.value->>'first_at' AS f, j.value->>'last_at' AS l FROM ${source}`;
        await timed('event summaries', () => c.query(`UPDATE contacts u SET event_summaries = (
            SELECT coalesce(jsonb_object_agg(k, jsonb_build_object('count', c, 'first_at', f, 'last_at', l)), '{}'::jsonb)::text FROM (
              SELECT k, sum(c) AS c, min(f) AS f, max(l) AS l FROM (
                ${summaryRows('jsonb_each(u.event_summaries::jsonb) j')}
                UNION ALL ${summaryRows('contacts ld, jsonb_each(ld.event_summaries::jsonb) j WHERE ld.id = b.lead_id')}
              ) x GROUP BY k) y)
          FROM batch b WHERE u.id = b.user_id`));
        await timed('attributes', async () => {
          // lead || user: the user's values win, the lead's other keys are added (one lead per user here).
          await c.query(`UPDATE contacts u SET attributes = (l.attributes::jsonb || u.attributes::jsonb)::text
            FROM batch b JOIN contacts l ON l.id = b.lead_id WHERE u.id = b.user_id`);
        });
        await timed('visitors', () => c.query('DELETE FROM visitors v USING batch b WHERE v.contact_id = b.lead_id'));
        // Last: the tombstones' attributes and summaries are emptied once everything is read.
        merged += (await timed('claim leads', () => c.query(`UPDATE contacts k SET merged_into = b.user_id, merged_at = $1, merge_into_id = NULL, merge_trigger = NULL, updated_at = $1,
          attributes = '{}', event_summaries = '{}' FROM batch b WHERE k.id = b.lead_id AND k.merged_into IS NULL`, [now]))).rowCount ?? 0;
        await c.query('DELETE FROM batch');
        await c.query('COMMIT');
      });
    }
    const seconds = (performance.now() - t0) / 1000;
    const breakdown = [...spent].map(([k, ms]) => `${k} ${(ms / 1000).toFixed(2)} s`).join(', ');
    return { seconds, merged, ambiguous, conversations_moved: conversationsMoved, events_moved: eventsMoved, breakdown };
  });
}

async function runPostgres(n: number, budget: number): Promise<DbRun> {
  const shape = shapeFor(n);
  const dir = mkdtempSync(join(tmpdir(), 'parley-bench-merge-pg-'));
  const csvPath = join(dir, 'users.csv');
  const profDir = join(dir, 'profiles');
  const nodeArgs = (name: string) => (opts.profile ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`, `--cpu-prof-name=${name}.cpuprofile`] : []);
  const count = (x: number) => x.toLocaleString('en-US');
  const schemas: BenchSchema[] = [];
  try {
    const main = await createBenchSchema();
    schemas.push(main);
    console.log(`merge bench on PostgreSQL ${await postgresVersion()} (${new URL(PG_URL).host}, schema ${main.name}): ${count(n)} leads, ${count(shape.users)} users, phase budget ${budget} s, CSV in ${dir}`);
    const setup = await createParley({ postgresUrl: PG_URL, postgresSchema: main.name, rateLimits: 'off', log: () => undefined, runWorker: false });
    const app = await createApp(setup.services.db, systemClock, { name: 'Bench', allowed_origins: ['*'] });
    await setup.close();

    let t = performance.now();
    const generated = await generateLeadsPg(main.name, app.id, shape);
    console.log(`  generated ${count(generated)} rows (multi-row INSERTs) in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    writeCsv(csvPath, shape);
    // With --keep, a copy of the generated leads outlives the run (as leads.db does on SQLite).
    if (opts.keep) {
      const leads = await pgCopy(main.name, ['apps', 'contacts', 'visitors', 'conversations', 'messages', 'events']);
      leads.keep();
      console.log(`  kept the generated leads in schema ${leads.name}`);
    }
    // The plain-INSERT baseline's copy: same schema and indexes, the app and the leads (all it writes to).
    const insertCopy = await pgCopy(main.name, ['apps', 'contacts']);
    schemas.push(insertCopy);

    console.log('  import (product: importUsers, child process)…');
    const imp = await productPhase(['--phase', 'import', '--pg-schema', main.name, '--app', app.id, '--csv', csvPath], budget, nodeArgs('import'),
      (r) => r.report['created']! + r.report['updated']! + r.report['unchanged']!, main.env);
    const importRate = imp.done / imp.seconds;
    console.log(`  import: ${imp.finished ? '' : 'DID NOT FINISH, '}${count(imp.done)} rows in ${imp.seconds.toFixed(1)} s, ${fmt(importRate, 'rows/s')} ${JSON.stringify(imp.report)}`);
    console.log('  import baseline (plain multi-row INSERT into a copy)…');
    const insertSeconds = await plainInsertPg(insertCopy.name, app.id, shape);
    const insertRate = shape.users / insertSeconds;
    const parsed = await parseOnly(csvPath);
    console.log(`  plain INSERT: ${insertSeconds.toFixed(1)} s, ${fmt(insertRate, 'rows/s')}; csv-parse alone: ${fmt(parsed.records / parsed.seconds, 'rows/s')}`);
    const work = main;
    if (!imp.finished) {
      // Only apps and contacts were copied: the merge would have nothing to move. Go on with what the import left.
      console.log('  the import did not finish: the merge runs on what it imported');
    }
    if (work !== insertCopy) {
      await insertCopy.drop();
      schemas.splice(schemas.indexOf(insertCopy), 1);
    }

    const userEvents = await withPg(work.name, async (c) => (await c.query(`UPDATE contacts SET event_summaries = $2
      WHERE app_id = $1 AND role = 'user' AND created_via = 'csv' AND CAST(substr(user_id, 5) AS INTEGER) % 10 = 0`, [app.id, USER_PAGE_VIEWS])).rowCount ?? 0);
    await withPg(work.name, (c) => c.query('ANALYZE'));
    const before = await pgCensus(work.name);
    const sqlCopy = await pgCopy(work.name, ['apps', 'contacts', 'visitors', 'events', 'conversations', 'messages']);
    schemas.push(sqlCopy);

    console.log('  bulk merge (product: bulkMerge, child process)…');
    const mrg = await productPhase(['--phase', 'merge', '--pg-schema', work.name, '--app', app.id], budget, nodeArgs('merge'), (r) => r.report['merged']!, work.env);
    const mergeRate = mrg.done / mrg.seconds;
    console.log(`  merge: ${mrg.finished ? '' : 'DID NOT FINISH, '}${count(mrg.done)} leads merged in ${mrg.seconds.toFixed(1)} s, ${fmt(mergeRate, 'leads/s')} ${JSON.stringify(mrg.report)}`);
    console.log('  merge baseline (set-based SQL, 1,000 leads a transaction, on a copy)…');
    const base = await sqlMergePg(sqlCopy.name, app.id);
    const baseRate = base.merged / base.seconds;
    console.log(`  SQL merge: ${base.seconds.toFixed(1)} s, ${fmt(baseRate, 'leads/s')}, ${JSON.stringify({ ...base, seconds: undefined, breakdown: undefined })}\n  SQL merge time: ${base.breakdown}`);

    const after = await pgCensus(work.name);
    const baseAfter = await pgCensus(sqlCopy.name);
    const productState = await pgMergeState(work.name);
    const baselineState = await pgMergeState(sqlCopy.name);
    const differing = Object.keys(productState).filter((k) => productState[k] !== baselineState[k]);
    const failures: string[] = [];
    const unfinished: string[] = [];
    const expect = (ok: boolean, what: string) => {
      if (!ok) failures.push(what);
    };
    if (imp.finished) expect(imp.report['created'] === shape.users && imp.report['failed'] === 0, `import created ${imp.report['created']} of ${shape.users} users, ${imp.report['failed']} failed`);
    else unfinished.push(`the product import did not finish within ${budget} s (${count(imp.done)} of ${count(shape.users)} rows); the merge ran on what it had imported`);
    expect(after.messages === before.messages, `messages before ${before.messages}, after ${after.messages}`);
    expect(after.conversations === before.conversations, `conversations before ${before.conversations}, after ${after.conversations}`);
    expect(after.eventCount === before.eventCount, `event occurrences before ${before.eventCount}, after ${after.eventCount}`);
    expect(after.strayMessages === 0, `${after.strayMessages} messages not owned by a live user or lead`);
    expect(after.mergedLeads === after.audits, `${after.mergedLeads} tombstones but ${after.audits} audit rows`);
    const expectedMerged = imp.finished ? shape.unique : base.merged;
    if (mrg.finished) {
      expect(mrg.report['merged'] === expectedMerged, `merged ${mrg.report['merged']}, expected ${expectedMerged}`);
      if (imp.finished) {
        expect(mrg.report['ambiguous'] === shape.ambiguous, `ambiguous ${mrg.report['ambiguous']}, expected ${shape.ambiguous}`);
        expect(mrg.report['conversations_moved'] === 2 * shape.unique, `conversations_moved ${mrg.report['conversations_moved']}, expected ${2 * shape.unique}`);
        expect(mrg.report['events_moved'] === 10 * shape.unique, `events_moved ${mrg.report['events_moved']}, expected ${10 * shape.unique}`);
      }
      expect(after.mergedLeads === expectedMerged, `${after.mergedLeads} tombstones, expected ${expectedMerged}`);
      expect(differing.length === 0, `product and SQL baseline end states differ in: ${differing.join(', ')}`);
    } else unfinished.push(`the product merge did not finish within ${budget} s (${count(mrg.done)} leads merged, killed with SIGKILL); the conservation checks ran on what it left`);
    expect(baseAfter.messages === before.messages && baseAfter.strayMessages === 0, `SQL baseline: messages ${baseAfter.messages} of ${before.messages}, ${baseAfter.strayMessages} stray`);

    const dnf = (o: PhaseOutcome) => (o.finished ? '' : ' (DID NOT FINISH: rate so far)');
    const rows: BenchRow[] = [
      { bench: 'merge', db: 'PostgreSQL', figure: `CSV import (importUsers), ${count(shape.users)} users${dnf(imp)}`, value: importRate, unit: 'rows/s', higherIsBetter: true,
        baseline: { label: 'batched plain INSERT', value: insertRate }, target: '≥ 50,000 rows/s', targetMin: 50_000,
        note: `${count(imp.done)} rows in ${imp.seconds.toFixed(1)} s (plain multi-row INSERT: ${insertSeconds.toFixed(1)} s); each row carries 2 attributes and marks the matching lead (R4); csv-parse alone reads ${fmt(parsed.records / parsed.seconds, 'rows/s')}` },
      { bench: 'merge', db: 'PostgreSQL', figure: `bulk merge (bulkMerge), ${count(shape.unique)} of ${count(n)} leads${dnf(mrg)}`, value: mergeRate, unit: 'leads/s', higherIsBetter: true,
        baseline: { label: 'set-based SQL, 1,000 leads/tx', value: baseRate }, target: '≥ 15,000 leads/s', targetMin: 15_000,
        note: `${count(mrg.done)} leads merged in ${mrg.seconds.toFixed(1)} s (SQL baseline ${base.seconds.toFixed(1)} s); ${count(userEvents)} users had an event summary to combine` },
      { bench: 'merge', db: 'PostgreSQL', figure: `peak RSS, import child${dnf(imp)}`, value: imp.maxRssBytes / MB, unit: 'MB', higherIsBetter: false,
        baseline: { label: 'same child, db open, before work', value: imp.rssStartBytes / MB }, target: '< 300 MB', targetMax: 300 },
      { bench: 'merge', db: 'PostgreSQL', figure: `peak RSS, merge child${dnf(mrg)}`, value: mrg.maxRssBytes / MB, unit: 'MB', higherIsBetter: false,
        baseline: { label: 'same child, db open, before work', value: mrg.rssStartBytes / MB }, target: '< 300 MB', targetMax: 300 },
      { bench: 'merge', db: 'PostgreSQL', figure: 'messages lost or orphaned by the merge', value: before.messages - after.messages + after.strayMessages, unit: '', higherIsBetter: false,
        target: '0', targetMax: 0, note: `messages before ${count(before.messages)}, after ${count(after.messages)}; every message's conversation owned by a live user/lead: ${after.strayMessages === 0 ? 'yes' : `no (${after.strayMessages})`}` },
    ];
    const extra = [
      `merge (PostgreSQL): PostgreSQL ${await postgresVersion()} on 127.0.0.1 (same machine), fresh schemas dropped afterwards; data generated with multi-row INSERTs (same shape and seeds as on SQLite); the product's pool of ${process.env['PARLEY_PG_POOL'] ?? 10} connections; baselines on copies of the schema (INSERT … SELECT), the SQL merge written with UPDATE … FROM joins on the batch`,
      mrg.finished ? `merge (PostgreSQL): end state identical to the SQL baseline (contacts, conversations, event_summaries, attributes, visitors, merges): ${differing.length === 0 ? 'yes' : `NO, differs in ${differing.join(', ')}`}` : 'merge (PostgreSQL): end state not compared with the SQL baseline (the product merge did not finish)',
      ...unfinished.map((u) => `merge (PostgreSQL): ${u}`),
    ];
    if (opts.profile && existsSync(profDir)) {
      for (const f of readdirSync(profDir)) {
        console.log(`\nCPU profile ${f} (PostgreSQL):`);
        for (const line of summariseProfile(join(profDir, f))) console.log(`  ${line}`);
      }
    }
    return { rows, notes: extra, failures };
  } finally {
    for (const s of schemas) await s.drop();
    if (opts.keep) console.log(`\nkept ${dir} (the PostgreSQL schemas other than the kept leads are dropped)`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const n = Number(opts.leads ?? process.env['BENCH_LEADS'] ?? 100_000);
  if (!Number.isInteger(n) || n < 100) throw new Error('--leads must be an integer of at least 100');
  // Each product phase gets a time budget; one that overruns it is killed and reported as such.
  const budget = Number(process.env['BENCH_PHASE_TIMEOUT'] ?? (n > 20_000 ? 1200 : 100));
  const dbs = benchDbs();
  watchdog(dbs.length * (4 * budget + 600) * 1000, 'merge bench');
  const runs: DbRun[] = [];
  for (const db of dbs) runs.push(db === 'sqlite' ? await runSqlite(n, budget) : await runPostgres(n, budget));
  const rows = interleave(runs.map((r) => r.rows));
  const failures = runs.flatMap((r, i) => r.failures.map((f) => `${DB_LABEL[dbs[i]!]}: ${f}`));
  const extra = [
    `merge: data ${n.toLocaleString('en-US')} leads × (2 conversations, 5 messages, 10 events in 3 summaries, 5 attributes); ${shapeFor(n).users.toLocaleString('en-US')} users in CSV (user_id, email, name, plan, company)`,
    ...runs.flatMap((r) => r.notes),
  ];
  if (failures.length > 0) extra.push(`merge: CHECKS FAILED: ${failures.join('; ')}`);
  publish(`Bulk merge benchmark (${n.toLocaleString('en-US')} leads, ${dbs.map((d) => DB_LABEL[d]).join(' and ')})`, rows, extra);
  if (failures.length > 0) process.exitCode = 1;
}

if (opts.phase) {
  await runPhase(opts.phase, opts.db, opts['pg-schema'], opts.app!, opts.csv);
  process.disconnect?.(); // the IPC channel would keep the child alive
} else {
  await main();
}
