import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { startServer } from '../../server-stub/main.ts';
import { userHash } from '../../server-stub/domain/verification.ts';
import { createApp, findApp } from '../../server-stub/storage/apps.ts';

const dir = mkdtempSync(join(tmpdir(), 'parley-restart-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function http(url: string, method: string, body?: unknown, token?: string) {
  const res = await fetch(url, {
    method,
    headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body ? JSON.stringify(body) : null,
  });
  return { status: res.status, body: (await res.json()) as any };
}

describe('a real server on a port, restarted on the same database file', () => {
  it('R5: finds every contact, conversation and pending merge again, and the pending merge resumes', async () => {
    const dbPath = join(dir, 'parley.db');
    // First life: the worker is off, so the login's merge job stays pending when the server stops.
    const first = await startServer({ port: 0, sqlitePath: dbPath, quiet: true, demo: false, runWorker: false, rateLimits: 'off', log: () => undefined });
    const app = await createApp(first.parley.services.db, first.parley.services.clock, { name: 'Restart', require_verification: true, allowed_origins: ['*'] });
    const visitor = randomUUID();
    const started = await http(`${first.url}/v1/messenger/conversations`, 'POST', { app_id: app.id, visitor_id: visitor, body: 'kept across restarts', client_id: randomUUID() });
    expect(started.status).toBe(201);
    const other = await http(`${first.url}/v1/messenger/conversations`, 'POST', { app_id: app.id, visitor_id: randomUUID(), body: 'another lead', client_id: randomUUID() });
    await http(`${first.url}/v1/messenger/ping`, 'POST', { app_id: app.id, visitor_id: visitor, user: { user_id: 'u-r', user_hash: userHash(app.identity_secret, 'u-r') } });
    const login = await http(`${first.url}/v1/messenger/ping`, 'POST', { app_id: app.id, visitor_id: visitor, user: { user_id: 'u-r', user_hash: userHash(app.identity_secret, 'u-r') } });
    expect(login.body.merge.status).toBe('pending');
    await first.close();

    const second = await startServer({ port: 0, sqlitePath: dbPath, quiet: true, demo: false, rateLimits: 'off', log: () => undefined, workerPollMs: 20 });
    expect((await findApp(second.parley.services.db, app.id))?.admin_token).toBe(app.admin_token);
    const token = app.admin_token;
    const lead = await http(`${second.url}/v1/contacts/${other.body.contact.id}`, 'GET', undefined, token);
    expect(lead.body.conversation_ids).toEqual([other.body.conversation.id]);
    // The pending merge resumes on start, without another ping.
    const deadline = Date.now() + 3000;
    let merged: any;
    while (Date.now() < deadline) {
      merged = await http(`${second.url}/v1/contacts/${started.body.contact.id}`, 'GET', undefined, token);
      if (merged.body.role === 'user') break;
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(merged.body).toMatchObject({ user_id: 'u-r', conversation_ids: [started.body.conversation.id] });
    const health = await fetch(`${second.url}/healthz`);
    expect(health.status).toBe(200);
    await second.close();
  });
});

describe('command line', () => {
  it('`parley app create --json` prints only the new app\'s credentials', async () => {
    const db = join(dir, 'cli.db');
    const { stdout } = await promisify(execFile)('node', ['server-stub/bin/parley.js', 'app', 'create', '--name', 'Shop', '--origins', 'https://a.example,https://b.example', '--require-verification', '--db', db, '--json']);
    const out = JSON.parse(stdout) as Record<string, string>;
    expect(Object.keys(out).sort()).toEqual(['admin_token', 'app_id', 'identity_secret']);
  });

  it('bad arguments exit non-zero with a one-line reason', async () => {
    const run = promisify(execFile)('node', ['server-stub/bin/parley.js', 'bulk-merge', '--db', join(dir, 'cli.db')]);
    await expect(run).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining('--app is required') });
  });
});

describe('the demo console token', () => {
  it('a production server (parley serve, startServer by default) never hands the admin token to a browser', async () => {
    const running = await startServer({ port: 0, sqlitePath: join(dir, 'token.db'), quiet: true, rateLimits: 'off', log: () => undefined });
    const res = await fetch(`${running.url}/demo/console-token`);
    expect(res.status).toBe(404);
    expect(await res.text()).not.toContain(running.demoApp!.admin_token);
    await running.close();
  });
});
