/**
 * The `parley` command's human output (without --json): what an operator reads in a terminal.
 * Real processes on a real SQLite file, as an operator runs them.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { withDatabase } from '../support/crash-harness.ts';
import { findApp } from '../../server-stub/storage/apps.ts';

const CLI = 'server-stub/bin/parley.js';
const dir = mkdtempSync(join(tmpdir(), 'parley-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const parley = (args: string[]) => promisify(execFile)('node', [CLI, ...args]);

describe('parley import-users (human output)', () => {
  it('lists the failed rows with their line and reason on stdout, progress on stderr', async () => {
    const db = join(dir, 'import.db');
    const created = JSON.parse((await parley(['app', 'create', '--name', 'Shop', '--db', db, '--json'])).stdout) as { app_id: string };
    const csv = join(dir, 'users.csv');
    writeFileSync(csv, 'user_id,email,name\nu1,a@example.com,Ann\nu2,null,Bo\nu3,nope,Cy\nu1,d@example.com,Di\n');
    const { stdout, stderr } = await parley(['import-users', csv, '--app', created.app_id, '--db', db]);
    expect(stdout).toMatch(/^created\s+1$/m);
    expect(stdout).toMatch(/^failed\s+3$/m);
    expect(stdout).toMatch(/^\s+line 3: email is not a real identity$/m);
    expect(stdout).toMatch(/^\s+line 4: email is malformed$/m);
    expect(stdout).toMatch(/^\s+line 5: repeats the identity of line 2$/m);
    expect(stdout).not.toMatch(/listed/);
    expect(stdout).not.toMatch(/rows done/);
    expect(stderr).toMatch(/import: .*rows done/);
  });

  it('caps the listing at 20 rows and says how many more failed', async () => {
    const db = join(dir, 'many.db');
    const created = JSON.parse((await parley(['app', 'create', '--name', 'Shop', '--db', db, '--json'])).stdout) as { app_id: string };
    const csv = join(dir, 'many.csv');
    writeFileSync(csv, ['user_id,email', ...Array.from({ length: 25 }, (_, i) => `u${i},bad-${i}`), 'u-ok,ok@example.com', ''].join('\n'));
    const { stdout } = await parley(['import-users', csv, '--app', created.app_id, '--db', db]);
    expect(stdout).toMatch(/^failed\s+25$/m);
    const listed = stdout.split('\n').filter((l) => /^\s+line \d+: /.test(l));
    expect(listed).toHaveLength(20);
    expect(listed[0]).toMatch(/line 2: email is malformed/);
    expect(listed[19]).toMatch(/line 21: /);
    expect(stdout).toMatch(/and 5 more/);
  });
});

describe('parley app create (human output)', () => {
  it('prints the webhook signing secret on its own labelled line', async () => {
    const db = join(dir, 'app.db');
    const { stdout } = await parley(['app', 'create', '--name', 'Shop', '--db', db]);
    const appId = /app_id:\s+(\S+)/.exec(stdout)?.[1];
    expect(appId).toBeDefined();
    const app = await withDatabase(db, (p) => findApp(p.services.db, appId!));
    const line = stdout.split('\n').find((l) => l.includes(app!.webhook_secret));
    expect(line).toMatch(/webhook/i);
    expect(line).toMatch(/parley-signature/);
    expect(line!.split(/\s+/)).toContain(app!.webhook_secret);
  });
});

describe('parley serve', () => {
  /** Starts `parley serve` on a free port and answers its URL once it is listening. */
  async function serve(args: string[]): Promise<{ url: string; stop: () => Promise<void> }> {
    const { spawn } = await import('node:child_process');
    const child = spawn('node', [CLI, 'serve', '--port', '0', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr.on('data', (b: Buffer) => {
        err += b.toString();
        const m = /Parley is running on (\S+)/.exec(err);
        if (m) resolve(m[1]!);
      });
      child.once('exit', (code) => reject(new Error(`serve exited (${code}): ${err}`)));
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    return { url, stop: () => (child.kill('SIGTERM'), exited) };
  }

  it('publishes no demo (shop, console, demo app) unless asked with --demo', async () => {
    const db = join(dir, 'serve.db');
    const plain = await serve(['--db', db]);
    try {
      expect((await fetch(`${plain.url}/healthz`)).status).toBe(200);
      // The widget's script is the product: served with the demo or without (503 until built).
      expect((await fetch(`${plain.url}/widget/parley.js`)).status).toBe(existsSync('dist/parley.js') ? 200 : 503);
      expect((await fetch(`${plain.url}/`)).status).toBe(404);
      expect((await fetch(`${plain.url}/console`)).status).toBe(404);
    } finally {
      await plain.stop();
    }
    const { createParley } = await import('../../server-stub/server.ts');
    const opened = await createParley({ sqlitePath: db, runWorker: false, log: () => undefined });
    try {
      expect(await findApp(opened.services.db, 'demo')).toBeNull();
    } finally {
      await opened.close();
    }
    const demo = await serve(['--db', db, '--demo']);
    try {
      expect((await fetch(`${demo.url}/`)).status).toBe(200);
    } finally {
      await demo.stop();
    }
  }, 30_000);
});

describe('parley app origins', () => {
  it('create keeps origins as browsers send them; update replaces them; a value that is no origin is refused with exit 2', async () => {
    const db = join(dir, 'origins.db');
    const created = JSON.parse((await parley(['app', 'create', '--name', 'Shop', '--origins', 'https://Shop.example/', '--db', db, '--json'])).stdout) as { app_id: string };
    const updated = JSON.parse((await parley(['app', 'update', '--app', created.app_id, '--origins', 'https://www.shop.example,http://localhost:5173/', '--db', db, '--json'])).stdout);
    expect(updated).toEqual({ app_id: created.app_id, allowed_origins: ['https://www.shop.example', 'http://localhost:5173'] });
    const refused = await parley(['app', 'update', '--app', created.app_id, '--origins', 'shop.example', '--db', db]).then(() => null, (e: { code: number; stderr: string }) => e);
    expect(refused?.code).toBe(2);
    expect(refused?.stderr).toContain('not an origin');
    const missing = await parley(['app', 'update', '--app', 'app_nope', '--origins', 'https://a.example', '--db', db]).then(() => null, (e: { code: number; stderr: string }) => e);
    expect(missing?.code).toBe(1);
    expect(missing?.stderr).toContain('no app with id app_nope');
  });
});
