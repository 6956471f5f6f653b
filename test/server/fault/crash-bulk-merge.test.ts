/**
 * Crash injection, bulk merge (R11, R12): `parley bulk-merge` is killed with SIGKILL at seeded
 * moments while its merge transactions are open, five times, on the same database. After every
 * kill the file passes `PRAGMA integrity_check` and every lead is either fully merged (tombstone,
 * one audit row, its conversation, messages and events on the user, its cookie on the user) or
 * untouched (live, its own conversation and events, no audit row). A last run finishes the job.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { importUsers } from '../../../server-stub/services/user-import.ts';
import { createRng } from '../../support/prng.ts';
import { CLI, cli, inspect, integrityCheck, kill, run, seedMessengerLeads, sleep, until, withDatabase, writeLockProbe, type SeededLead } from '../../support/crash-harness.ts';

const SEED = 0xb01c_0001;
const KILLS = 5;
const LEADS = 3500; // four batches of the bulk merge

const dir = mkdtempSync(join(tmpdir(), 'parley-crash-bulk-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface LeadState {
  merged: number;
  untouched: number;
  broken: string[];
}

/** Classifies every seeded lead as fully merged or untouched; anything in between is `broken`. */
function leadStates(dbPath: string, leads: SeededLead[], userByEmail: Map<string, string>): LeadState {
  return inspect(dbPath, (db) => {
    const contact = db.prepare('select role, merged_into from contacts where id = ?');
    const conversation = db.prepare('select contact_id from conversations where id = ?');
    const messages = db.prepare('select count(*) as n from messages where conversation_id = ?');
    const merges = db.prepare('select into_id, trigger, conversations_moved, events_moved from merges where from_id = ?');
    const summaries = db.prepare("select coalesce(json_extract(event_summaries, '$.viewed.count'), 0) as n from contacts where id = ?");
    const visitor = db.prepare('select contact_id from visitors where visitor_id = ?');
    const state: LeadState = { merged: 0, untouched: 0, broken: [] };
    for (const lead of leads) {
      const c = contact.get(lead.id) as { role: string; merged_into: string | null };
      const conv = conversation.get(lead.conversationId) as { contact_id: string };
      const audit = merges.all(lead.id) as { into_id: string; trigger: string; conversations_moved: number; events_moved: number }[];
      const own = (summaries.get(lead.id) as { n: number }).n;
      const n = (messages.get(lead.conversationId) as { n: number }).n;
      // A bulk merge does not carry the lead's cookie to the user (only a cookie login does): it is unbound.
      const cookie = (visitor.get(lead.visitorId) as { contact_id: string } | undefined)?.contact_id ?? null;
      const user = userByEmail.get(lead.email)!;
      const fullyMerged = c.merged_into === user && audit.length === 1 && audit[0]!.into_id === user && audit[0]!.trigger === 'bulk'
        && audit[0]!.conversations_moved === 1 && audit[0]!.events_moved === lead.events && conv.contact_id === user && own === 0 && n === 2 && cookie === null;
      const untouched = c.role === 'lead' && c.merged_into === null && audit.length === 0 && conv.contact_id === lead.id && own === lead.events && n === 2 && cookie === lead.id;
      if (fullyMerged) state.merged++;
      else if (untouched) state.untouched++;
      else state.broken.push(`${lead.id}: ${JSON.stringify({ c, conv, audit, own, n, cookie })}`);
    }
    return state;
  });
}

function mergedCount(dbPath: string): number {
  return inspect(dbPath, (db) => (db.prepare('select count(*) as n from merges').get() as { n: number }).n);
}

/** Per user: the summed 'viewed' count must equal the events of the leads merged into it. */
function eventTotals(dbPath: string): number {
  return inspect(dbPath, (db) => (db.prepare("select coalesce(sum(json_extract(event_summaries, '$.viewed.count')), 0) as n from contacts").get() as { n: number }).n);
}

describe('crash injection: bulk merge', () => {
  it(`R12: ${KILLS} SIGKILLs during \`parley bulk-merge\` leave every lead merged or untouched, and a re-run finishes`, async () => {
    const rng = createRng(SEED);
    const dbPath = join(dir, 'bulk.db');
    const userByEmail = new Map<string, string>();
    const leads = await withDatabase(dbPath, async (parley, app) => {
      const emails = Array.from({ length: LEADS }, (_, i) => `lead${i}@example.com`);
      const report = await importUsers(parley.services, app, ['user_id,email', ...emails.map((e, i) => `user-${i},${e}`)].join('\n'));
      expect(report.created).toBe(LEADS);
      for (const u of await parley.services.db.selectFrom('contacts').select(['id', 'email']).where('role', '=', 'user').execute()) userByEmail.set(u.email!, u.id);
      return seedMessengerLeads(parley, app, emails);
    });
    const events = leads.reduce((n, l) => n + l.events, 0);
    expect(eventTotals(dbPath)).toBe(events);

    const interrupted: { merged: number; untouched: number }[] = [];
    for (let k = 0; k < KILLS; k++) {
      const p = run([CLI, 'bulk-merge', '--app', 'demo', '--db', dbPath, '--json', '--batch-size', '1000']);
      const probe = writeLockProbe(dbPath);
      // Wait until a seeded number of this run's batches committed and a merge transaction is open,
      // then kill at a seeded moment inside it (or just after it).
      const before = interrupted.at(-1)?.merged ?? 0;
      // `before + 1` waits for this run's first batch to commit; the cap leaves at least one more batch after the one killed.
      const target = Math.min(before + rng.pick([0, 0, 1]), LEADS - 2200);
      const inTransaction = await until(() => mergedCount(dbPath) >= target && probe.held(), p);
      probe.close();
      await sleep(rng.int(0, 20));
      const killed = await kill(p);
      expect(inTransaction && killed, `kill ${k} landed while the bulk merge ran (stderr: ${p.stderr().slice(0, 300)})`).toBe(true);
      expect(integrityCheck(dbPath)).toEqual(['ok']);
      const state = leadStates(dbPath, leads, userByEmail);
      expect(state.broken.slice(0, 3), `kill ${k}`).toEqual([]);
      expect(state.merged + state.untouched).toBe(LEADS);
      expect(eventTotals(dbPath)).toBe(events);
      interrupted.push({ merged: state.merged, untouched: state.untouched });
    }
    // The kills came before the end: work was left for the re-run each time.
    expect(interrupted.every((s) => s.untouched > 0), JSON.stringify(interrupted)).toBe(true);

    const rerun = await cli(['bulk-merge', '--app', 'demo', '--db', dbPath, '--json']);
    expect(rerun.code, rerun.stderr).toBe(0);
    const report = JSON.parse(rerun.stdout) as { merged: number; ambiguous: number };
    expect(report.merged).toBe(interrupted.at(-1)!.untouched);
    expect(integrityCheck(dbPath)).toEqual(['ok']);
    const done = leadStates(dbPath, leads, userByEmail);
    expect(done).toEqual({ merged: LEADS, untouched: 0, broken: [] });
    expect(eventTotals(dbPath)).toBe(events);
    console.info(`crash bulk merge: ${KILLS} kills, merged after each ${interrupted.map((s) => s.merged).join(', ')}; re-run merged ${report.merged}`);
  }, 120_000);
});
