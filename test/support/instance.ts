/**
 * One server instance as its own process, for multi-instance and crash tests:
 * `node --import tsx test/support/instance.ts` with PARLEY_DATABASE_URL + PARLEY_PG_SCHEMA (or PARLEY_DB).
 * Prints `LISTENING <port> <admin token>` on stdout once it accepts requests.
 */
import { startServer } from '../../server-stub/main.ts';
import { ensureDemoApp } from '../../server-stub/storage/apps.ts';

const running = await startServer({
  port: 0,
  quiet: true,
  demo: false,
  rateLimits: 'off',
  log: () => undefined,
  workerPollMs: 50,
  ...(process.env['PARLEY_DATABASE_URL']
    ? { postgresUrl: process.env['PARLEY_DATABASE_URL'], postgresSchema: process.env['PARLEY_PG_SCHEMA'] }
    : { sqlitePath: process.env['PARLEY_DB'] ?? 'data/instance.db' }),
});
// The demo app's credentials (created here: without the demo routes the server makes no demo app).
const { app } = await ensureDemoApp(running.parley.services.db, running.parley.services.clock);
process.stdout.write(`LISTENING ${running.port} ${app.admin_token} ${app.identity_secret}\n`);
process.once('SIGTERM', () => void running.close().then(() => process.exit(0)));
