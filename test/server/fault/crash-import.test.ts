/**
 * Crash injection, CSV import (R4, R5): `parley import-users` is killed with SIGKILL at seeded
 * moments while its batch transactions are open, five times, on the same database. After every
 * kill the file passes `PRAGMA integrity_check`; every imported user is complete (name and
 * attributes of its row); a messenger lead with a user's email is marked for that user exactly when
 * the user exists (marking commits with the user); nothing is merged. A re-run completes the import
 * with no duplicates.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createRng } from '../../support/prng.ts';
import { CLI, cli, inspect, integrityCheck, kill, run, seedMessengerLeads, sleep, until, withDatabase, writeLockProbe, type SeededLead } from '../../support/crash-harness.ts';

const SEED = 0x1a9_0002;
const KILLS = 5;
const ROWS = 12_000; // twelve batches of the killed imports (--batch-size 1000): imports got fast enough that 4,000 rows left a kill too little time

const dir = mkdtempSync(join(tmpdir(), 'parley-crash-import-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const row = (i: number) => ({ user_id: `imp-${i}`, email: `imp${i}@example.com`, name: `Imported ${i}`, plan: `plan-${i % 7}` });

interface ImportState {
  users: number;
  incomplete: string[];
  duplicates: number;
  badMarks: string[];
  merges: number;
}

function importState(dbPath: string, leads: SeededLead[]): ImportState {
  return inspect(dbPath, (db) => {
    const users = db.prepare("select id, user_id, email, name from contacts where role = 'user' and created_via = 'csv'").all() as { id: string; user_id: string; email: string; name: string }[];
    const plan = db.prepare("select json_extract(attributes, '$.plan') as value from contacts where id = ?");
    const incomplete: string[] = [];
    for (const u of users) {
      const i = Number(u.user_id.slice(4));
      const want = row(i);
      const p = plan.get(u.id) as { value: string } | undefined;
      if (u.email !== want.email || u.name !== want.name || p?.value !== want.plan) incomplete.push(`${u.user_id}: ${JSON.stringify({ u, p })}`);
    }
    const byEmail = new Map(users.map((u) => [u.email, u.id]));
    const lead = db.prepare('select merged_into, merge_into_id, merge_trigger from contacts where id = ?');
    const badMarks: string[] = [];
    for (const l of leads) {
      const c = lead.get(l.id) as { merged_into: string | null; merge_into_id: string | null; merge_trigger: string | null };
      const user = byEmail.get(l.email);
      const ok = c.merged_into === null && (user === undefined ? c.merge_into_id === null : c.merge_into_id === user && c.merge_trigger === 'csv');
      if (!ok) badMarks.push(`${l.email}: ${JSON.stringify({ c, user })}`);
    }
    const distinct = (db.prepare("select count(distinct user_id) as n from contacts where role = 'user'").get() as { n: number }).n;
    const all = (db.prepare("select count(*) as n from contacts where role = 'user'").get() as { n: number }).n;
    const merges = (db.prepare('select count(*) as n from merges').get() as { n: number }).n;
    return { users: users.length, incomplete, duplicates: all - distinct, badMarks, merges };
  });
}

const csvUsers = (dbPath: string) => inspect(dbPath, (db) => (db.prepare("select count(*) as n from contacts where created_via = 'csv'").get() as { n: number }).n);

describe('crash injection: CSV import', () => {
  it(`${KILLS} SIGKILLs during \`parley import-users\` leave only complete users and matching marks; a re-run completes with no duplicates`, async () => {
    const rng = createRng(SEED);
    const dbPath = join(dir, 'import.db');
    const csvPath = join(dir, 'users.csv');
    writeFileSync(csvPath, ['user_id,email,name,plan', ...Array.from({ length: ROWS }, (_, i) => Object.values(row(i)).join(','))].join('\n'));
    // Messenger leads that left the email of every tenth row, spread over all batches.
    const leads = await withDatabase(dbPath, (parley, app) => seedMessengerLeads(parley, app, Array.from({ length: ROWS / 10 }, (_, i) => row(i * 10).email)));

    const after: number[] = [];
    for (let k = 0; k < KILLS; k++) {
      const p = run([CLI, 'import-users', csvPath, '--app', 'demo', '--db', dbPath, '--json', '--batch-size', '1000']);
      const probe = writeLockProbe(dbPath);
      const before = after.at(-1) ?? 0;
      // `before + 1` waits for this run's first new batch to commit; the cap leaves at least one more batch after the one killed.
      const target = Math.min(before + rng.pick([0, 0, 1]), ROWS - 2200);
      const inTransaction = await until(() => csvUsers(dbPath) >= target && probe.held(), p);
      probe.close();
      await sleep(rng.int(0, 20));
      const killed = await kill(p);
      expect(inTransaction && killed, `kill ${k} landed while the import ran (stderr: ${p.stderr().slice(0, 300)})`).toBe(true);
      expect(integrityCheck(dbPath)).toEqual(['ok']);
      const state = importState(dbPath, leads);
      expect(state.incomplete.slice(0, 3), `kill ${k}`).toEqual([]);
      expect(state.badMarks.slice(0, 3), `kill ${k}`).toEqual([]);
      expect(state.duplicates).toBe(0);
      expect(state.merges, 'an import only marks (R5)').toBe(0);
      after.push(state.users);
    }
    expect(after.every((n) => n < ROWS), JSON.stringify(after)).toBe(true);

    const rerun = await cli(['import-users', csvPath, '--app', 'demo', '--db', dbPath, '--json']);
    expect(rerun.code, rerun.stderr).toBe(0);
    const report = JSON.parse(rerun.stdout) as { created: number; updated: number; unchanged: number; failed: unknown[] };
    expect(report).toMatchObject({ created: ROWS - after.at(-1)!, updated: 0, unchanged: after.at(-1)!, failed: [] });
    expect(integrityCheck(dbPath)).toEqual(['ok']);
    expect(importState(dbPath, leads)).toEqual({ users: ROWS, incomplete: [], duplicates: 0, badMarks: [], merges: 0 });
    console.info(`crash import: ${KILLS} kills, users after each ${after.join(', ')}; re-run created ${report.created}`);
  }, 120_000);
});
