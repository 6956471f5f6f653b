/**
 * Crash-injection helpers: real Parley processes (the `parley` CLI, or a server on a port) that a
 * test kills with SIGKILL at seeded moments, and read-only checks of the SQLite file they leave.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import SQLite from 'better-sqlite3';
import { createParley, type Parley } from '../../server-stub/server.ts';
import { ensureDemoApp, type App } from '../../server-stub/storage/apps.ts';

export const CLI = 'server-stub/bin/parley.js';
export const SERVER_SCRIPT = 'test/support/crash-server.ts';

/** Opens the database in-process (no worker) with the demo app, runs `fn`, closes it. */
export async function withDatabase<T>(dbPath: string, fn: (parley: Parley, app: App) => Promise<T>): Promise<T> {
  const parley = await createParley({ sqlitePath: dbPath, runWorker: false, rateLimits: 'off', log: () => undefined });
  try {
    const { app } = await ensureDemoApp(parley.services.db, parley.services.clock);
    return await fn(parley, app);
  } finally {
    await parley.close();
  }
}

export interface SeededLead {
  id: string;
  visitorId: string;
  email: string;
  conversationId: string;
  messageIds: string[];
  events: number;
}

/**
 * Messenger leads as the widget leaves them (a cookie, an email from the lead prompt, a conversation
 * with two messages, a 'viewed' event summary), inserted in one transaction, many rows a statement,
 * for speed: thousands of leads in well under a second.
 */
export async function seedMessengerLeads(parley: Parley, app: App, emails: string[]): Promise<SeededLead[]> {
  const s = parley.services;
  const now = s.clock.now().toISOString();
  const leads: SeededLead[] = emails.map((email, i) => ({
    id: s.ids('cnt'), visitorId: randomUUID(), email, conversationId: s.ids('cnv'), messageIds: [s.ids('msg'), s.ids('msg')], events: 1 + (i % 3),
  }));
  const chunks = <T>(xs: T[], n = 200): T[][] => Array.from({ length: Math.ceil(xs.length / n) }, (_, i) => xs.slice(i * n, (i + 1) * n));
  await s.db.transaction().execute(async (trx) => {
    for (const part of chunks(leads)) {
      await trx.insertInto('contacts').values(part.map((l, i) => ({
        id: l.id, app_id: app.id, role: 'lead' as const, user_id: null, email: l.email, email_norm: l.email.toLowerCase(), name: `Lead ${i}`, created_via: 'messenger' as const,
        created_at: now, updated_at: now, last_seen_at: now, merged_into: null, merged_at: null, merge_into_id: null, merge_trigger: null, attributes: '{}',
        event_summaries: JSON.stringify({ viewed: { count: l.events, first_at: now, last_at: now } }),
      }))).execute();
      await trx.insertInto('visitors').values(part.map((l) => ({ app_id: app.id, visitor_id: l.visitorId, contact_id: l.id, created_at: now }))).execute();
      await trx.insertInto('conversations').values(part.map((l) => ({ id: l.conversationId, app_id: app.id, contact_id: l.id, client_id: randomUUID(), created_at: now, updated_at: now, contact_read_at: now }))).execute();
      await trx.insertInto('messages').values(part.flatMap((l) => l.messageIds.map((mid, m) => ({
        id: mid, app_id: app.id, conversation_id: l.conversationId, author_type: 'contact' as const, author_id: l.id, body: `message ${m} of ${l.id}`, client_id: randomUUID(), created_at: now,
      })))).execute();
    }
  });
  return leads;
}

/** A read-only look at the file a killed process left: integrity first, then queries. */
export function inspect<T>(dbPath: string, fn: (db: SQLite.Database) => T): T {
  // A process starting on the file may be recovering its WAL: wait for it rather than fail.
  const db = new SQLite(dbPath, { readonly: true, fileMustExist: true, timeout: 5000 });
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

export function integrityCheck(dbPath: string): string[] {
  return inspect(dbPath, (db) => (db.prepare('PRAGMA integrity_check').all() as { integrity_check: string }[]).map((r) => r.integrity_check));
}

export interface Running {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stdout(): string;
  stderr(): string;
}

export function run(args: string[], options: { tsx?: boolean } = {}): Running {
  const child = spawn(process.execPath, options.tsx ? ['--import', 'tsx', ...args] : args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PARLEY_RATE_LIMIT: 'off' } });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, exited, stdout: () => out, stderr: () => err };
}

/** Runs `parley ...` to the end. */
export async function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = run([CLI, ...args]);
  const { code } = await p.exited;
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}

/** Polls `probe` until it is true (or the process ended, or the time is up). */
export async function until(probe: () => boolean, p: Running, timeoutMs = 20_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let ended = false;
  void p.exited.then(() => (ended = true));
  while (Date.now() < deadline && !ended) {
    if (attempt(probe)) return true;
    await new Promise((r) => setTimeout(r, 5));
  }
  return attempt(probe);
}

/** A probe that meets the other process's locks (WAL recovery, checkpoint) just answers "not yet". */
function attempt(probe: () => boolean): boolean {
  try {
    return probe();
  } catch (error) {
    if (String((error as { code?: string }).code).startsWith('SQLITE_BUSY')) return false;
    throw error;
  }
}

/** SIGKILL, and whether the process was still running when it came (not already finished). */
export async function kill(p: Running): Promise<boolean> {
  const alive = p.child.exitCode === null && p.child.signalCode === null;
  p.child.kill('SIGKILL');
  const { signal } = await p.exited;
  return alive && signal === 'SIGKILL';
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Watches for another process holding SQLite's write lock (a transaction that has written): a
 * `BEGIN IMMEDIATE` that fails at once with SQLITE_BUSY. Taking and dropping the lock when it is
 * free only makes the other process wait a moment (it has a busy timeout).
 */
export function writeLockProbe(dbPath: string): { held(): boolean; close(): void } {
  const db = new SQLite(dbPath, { timeout: 0, fileMustExist: true });
  return {
    held() {
      try {
        db.exec('BEGIN IMMEDIATE');
        db.exec('ROLLBACK');
        return false;
      } catch (error) {
        // Plain SQLITE_BUSY: another connection holds the write lock. (SQLITE_BUSY_RECOVERY and the
        // like mean it is opening the file, not writing: `attempt` in `until` answers "not yet".)
        if ((error as { code?: string }).code === 'SQLITE_BUSY') return true;
        throw error;
      }
    },
    close: () => db.close(),
  };
}
