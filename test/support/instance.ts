/**
 * One server instance as its own process, for multi-instance and crash tests:
 * `node --import tsx test/support/instance.ts` with PARLEY_DATABASE_URL + PARLEY_PG_SCHEMA (or PARLEY_DB).
 * Prints `LISTENING <port> <admin token>` on stdout once it accepts requests.
 */
import { startServer } from '../../server-stub/main.ts';

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
process.stdout.write(`LISTENING ${running.port} ${running.demoApp.admin_token} ${running.demoApp.identity_secret}\n`);
process.once('SIGTERM', () => void running.close().then(() => process.exit(0)));
