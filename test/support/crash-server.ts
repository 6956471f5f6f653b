/**
 * A real Parley server process for crash tests: `node --import tsx test/support/crash-server.ts DB`
 * binds a free port on 127.0.0.1 and prints one JSON line `{ port, app_id, admin_token,
 * identity_secret }` (the demo app) on stdout. Tests kill it with SIGKILL, so it has no shutdown.
 */
import { startServer } from '../../server-stub/main.ts';
import { ensureDemoApp } from '../../server-stub/storage/apps.ts';

const dbPath = process.argv[2];
if (!dbPath) {
  process.stderr.write('usage: crash-server.ts DB\n');
  process.exit(2);
}
const running = await startServer({ port: 0, sqlitePath: dbPath, quiet: true, demo: false, rateLimits: 'off', log: () => undefined, workerPollMs: 50 });
// The demo app's credentials (created here: without the demo routes the server makes no demo app).
const { app } = await ensureDemoApp(running.parley.services.db, running.parley.services.clock);
process.stdout.write(`${JSON.stringify({ port: running.port, app_id: app.id, admin_token: app.admin_token, identity_secret: app.identity_secret })}\n`);
