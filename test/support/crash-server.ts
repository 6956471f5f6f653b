/**
 * A real Parley server process for crash tests: `node --import tsx test/support/crash-server.ts DB`
 * binds a free port on 127.0.0.1 and prints one JSON line `{ port, app_id, admin_token,
 * identity_secret }` (the demo app) on stdout. Tests kill it with SIGKILL, so it has no shutdown.
 */
import { startServer } from '../../server-stub/main.ts';

const dbPath = process.argv[2];
if (!dbPath) {
  process.stderr.write('usage: crash-server.ts DB\n');
  process.exit(2);
}
const running = await startServer({ port: 0, sqlitePath: dbPath, quiet: true, demo: false, rateLimits: 'off', log: () => undefined, workerPollMs: 50 });
process.stdout.write(`${JSON.stringify({ port: running.port, app_id: running.demoApp.id, admin_token: running.demoApp.admin_token, identity_secret: running.demoApp.identity_secret })}\n`);
