/**
 * `parley` command line: serve, app create, import-users, bulk-merge. With --json, one JSON
 * document on stdout and progress on stderr; exit 0 on success, non-zero with a one-line reason.
 */
import { createReadStream } from 'node:fs';
import { parseArgs } from 'node:util';
import { createParley } from './server.ts';
import { createApp, findApp, normaliseOrigin, setAllowedOrigins } from './storage/apps.ts';
import { DEFAULT_SQLITE_PATH, type DatabaseOptions } from './storage/database.ts';
import { bulkMerge } from './services/bulk-merge.ts';
import { importUsers, type ImportReport } from './services/user-import.ts';
import { startServer } from './main.ts';
import { createProgress } from './progress.ts';

const USAGE = `usage:
  parley serve [--port N] [--host H] [--db PATH] [--database-url URL] [--demo]
  parley app create --name NAME [--require-verification] [--origins A,B] [--db PATH] [--json]
  parley app update --app APP_ID --origins A,B [--db PATH] [--json]
  parley import-users FILE --app APP_ID [--batch-size N] [--db PATH] [--json]
  parley bulk-merge --app APP_ID [--dry-run] [--include-api-leads] [--batch-size N] [--db PATH] [--json]

--batch-size: rows (import, default 3000) or leads (bulk merge, default 2000) per transaction. Smaller batches
hold the database for less time at once, larger ones finish sooner.`;

class UsageError extends Error {}

/** `--origins A,B` as browsers send origins; a value that is no http(s) origin is a usage error. */
function parseOrigins(list: string): string[] {
  return list.split(',').map((o) => o.trim()).filter(Boolean).map((o) => {
    const origin = normaliseOrigin(o);
    if (origin === null) throw new UsageError(`not an origin: ${JSON.stringify(o)} (give scheme and host, like https://shop.example)`);
    return origin;
  });
}

function databaseOptions(values: { db?: string | undefined; 'database-url'?: string | undefined }): DatabaseOptions {
  const url = values['database-url'] ?? process.env['PARLEY_DATABASE_URL'];
  if (url) return { postgresUrl: url };
  return { sqlitePath: values.db ?? process.env['PARLEY_DB'] ?? DEFAULT_SQLITE_PATH };
}

const quietLog = () => undefined;

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const common = { db: { type: 'string' }, 'database-url': { type: 'string' }, json: { type: 'boolean' } } as const;
  switch (command) {
    case 'serve': {
      const { values } = parseArgs({ args: rest, options: { ...common, port: { type: 'string' }, host: { type: 'string' }, demo: { type: 'boolean' } } });
      const port = Number(values.port ?? process.env['PORT'] ?? 3000);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError('--port must be a port number');
      // The demo shop and its app (any origin, a login page that signs any identity) only when asked.
      const running = await startServer({ port, host: values.host ?? process.env['HOST'] ?? '127.0.0.1', demo: values.demo === true, ...databaseOptions(values) });
      const stop = () => void running.close().then(() => process.exit(0));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      return;
    }
    case 'app': {
      const [sub, ...args] = rest;
      if (sub === 'update') {
        const { values } = parseArgs({ args, options: { ...common, app: { type: 'string' }, origins: { type: 'string' } } });
        if (!values.app) throw new UsageError('--app is required');
        if (values.origins === undefined) throw new UsageError('give --origins A,B (an empty list allows no browser)');
        const origins = parseOrigins(values.origins);
        const parley = await createParley({ ...databaseOptions(values), log: quietLog, runWorker: false });
        try {
          const app = await setAllowedOrigins(parley.services.db, values.app, origins);
          if (!app) throw new Error(`no app with id ${values.app}`);
          if (values.json) process.stdout.write(`${JSON.stringify({ app_id: app.id, allowed_origins: app.allowed_origins })}\n`);
          else process.stdout.write(`Updated app "${app.name}"\n  origins:         ${app.allowed_origins.join(', ') || '(none: no browser may call it)'}\n  (running servers see it within 5 seconds)\n`);
        } finally {
          await parley.close();
        }
        return;
      }
      if (sub !== 'create') throw new UsageError(`unknown command: app ${sub ?? ''}`);
      const { values } = parseArgs({ args, options: { ...common, name: { type: 'string' }, 'require-verification': { type: 'boolean' }, origins: { type: 'string' } } });
      if (!values.name) throw new UsageError('--name is required');
      const parley = await createParley({ ...databaseOptions(values), log: quietLog, runWorker: false });
      try {
        const origins = values.origins ? parseOrigins(values.origins) : [];
        const app = await createApp(parley.services.db, parley.services.clock, { name: values.name, require_verification: values['require-verification'] === true, allowed_origins: origins });
        const out = { app_id: app.id, admin_token: app.admin_token, identity_secret: app.identity_secret };
        if (values.json) process.stdout.write(`${JSON.stringify(out)}\n`);
        // The webhook secret is left out of --json, whose shape the spec fixes; without it here an
        // owner could not check the signatures of the deliveries.
        else process.stdout.write(`Created app "${app.name}"\n  app_id:          ${out.app_id}\n  admin_token:     ${out.admin_token}\n  identity_secret: ${out.identity_secret}\n  webhook_secret:  ${app.webhook_secret}   (signs webhook deliveries: header parley-signature)\n  origins:         ${origins.join(', ') || '(none yet)'}\n`);
      } finally {
        await parley.close();
      }
      return;
    }
    case 'import-users': {
      const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { ...common, app: { type: 'string' }, 'batch-size': { type: 'string' } } });
      const file = positionals[0];
      if (!file) throw new UsageError('give the CSV file to import');
      if (!values.app) throw new UsageError('--app is required');
      const parley = await createParley({ ...databaseOptions(values), log: quietLog, runWorker: false });
      try {
        const app = await findApp(parley.services.db, values.app);
        if (!app) throw new Error(`no app with id ${values.app}`);
        const progress = createProgress('import', 'rows');
        const report = await importUsers(parley.services, app, createReadStream(file), { onProgress: (n) => progress.update(n), ...batchSize(values['batch-size']) });
        progress.done();
        if (values.json) printReport(report, true);
        else process.stdout.write(formatImportReport(report));
      } finally {
        await parley.close();
      }
      return;
    }
    case 'bulk-merge': {
      const { values } = parseArgs({ args: rest, options: { ...common, app: { type: 'string' }, 'dry-run': { type: 'boolean' }, 'include-api-leads': { type: 'boolean' }, 'batch-size': { type: 'string' } } });
      if (!values.app) throw new UsageError('--app is required');
      const parley = await createParley({ ...databaseOptions(values), log: quietLog, runWorker: false });
      try {
        const app = await findApp(parley.services.db, values.app);
        if (!app) throw new Error(`no app with id ${values.app}`);
        const progress = createProgress(values['dry-run'] ? 'bulk merge (dry run)' : 'bulk merge', 'leads');
        const report = await bulkMerge(parley.services, app, { dry_run: values['dry-run'], include_api_leads: values['include-api-leads'], onProgress: (p) => progress.update(p.leads_seen), ...batchSize(values['batch-size']) });
        progress.done();
        printReport(report, values.json === true);
      } finally {
        await parley.close();
      }
      return;
    }
    case undefined:
    case '--help':
    case 'help':
      process.stdout.write(`${USAGE}\n`);
      return;
    default:
      throw new UsageError(`unknown command: ${command}`);
  }
}

function batchSize(value: string | undefined): { batchSize?: number } {
  if (value === undefined) return {};
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 100_000) throw new UsageError('--batch-size must be a whole number from 1 to 100000');
  return { batchSize: n };
}

function printReport(report: object, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }
  for (const [k, v] of Object.entries(report)) {
    process.stdout.write(`${k.padEnd(20)} ${Array.isArray(v) ? `${v.length} listed` : String(v)}\n`);
  }
}

/** Failed rows listed in the human report; --json lists them all (up to the import's own cap). */
const FAILED_SHOWN = 20;

/** The import report for a terminal: the counts, then which rows failed and why. */
function formatImportReport(report: ImportReport & { failed_count: number; complete: boolean }): string {
  const row = (k: string, v: string | number | boolean) => `${k.padEnd(20)} ${String(v)}\n`;
  let out = row('created', report.created) + row('updated', report.updated) + row('unchanged', report.unchanged) + row('failed', report.failed_count);
  for (const f of report.failed.slice(0, FAILED_SHOWN)) out += `  line ${f.line}: ${f.reason}\n`;
  const more = report.failed_count - Math.min(report.failed.length, FAILED_SHOWN);
  if (more > 0) out += `  and ${more.toLocaleString('en')} more (--json lists up to 10,000)\n`;
  out += row('complete', report.complete ? 'true' : 'false: the file could not be read to its end (see the last failed line)');
  return out;
}

main(process.argv.slice(2)).catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`parley: ${message.split('\n')[0]}\n`);
  if (error instanceof UsageError) process.stderr.write(`${USAGE}\n`);
  process.exit(error instanceof UsageError ? 2 : 1);
});
