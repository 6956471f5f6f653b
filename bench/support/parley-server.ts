/**
 * Child process for the HTTP benches: the real server (startServer, no demo) on a temp SQLite file,
 * or, with `--postgres <schema>`, on PostgreSQL (BENCH_PG_URL) in that schema (the parent creates
 * and drops it), on 127.0.0.1, with a bench app that needs no identity verification and allows any
 * origin.
 * Tells its parent `{ url, app_id, admin_token }` over IPC; stops when told to.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from '../../server-stub/main.ts';
import { createApp } from '../../server-stub/storage/apps.ts';
import { onParentStop, tellParent } from '../lib/child.ts';
import { PG_URL } from '../lib/postgres.ts';

export interface ParleyServerInfo {
  url: string;
  app_id: string;
  admin_token: string;
}

const flag = process.argv.indexOf('--postgres');
const schema = flag >= 0 ? process.argv[flag + 1] : undefined;
const dir = mkdtempSync(join(tmpdir(), 'parley-bench-server-'));
const database = schema ? { postgresUrl: PG_URL, postgresSchema: schema } : { sqlitePath: join(dir, 'parley.db') };
const running = await startServer({ port: 0, host: '127.0.0.1', ...database, quiet: true, demo: false, rateLimits: 'off', log: () => undefined });
const app = await createApp(running.parley.services.db, running.parley.services.clock, { name: 'Bench', allowed_origins: ['*'] });
onParentStop(async () => {
  await running.close();
  rmSync(dir, { recursive: true, force: true });
});
const info: ParleyServerInfo = { url: `http://127.0.0.1:${running.port}`, app_id: app.id, admin_token: app.admin_token };
await tellParent(info);
