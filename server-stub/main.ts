/**
 * The one file that binds a port: the API, the merge worker and the demo (shop + console) on one
 * origin. `npm start` runs this; `parley serve` calls startServer().
 */
import { fileURLToPath } from 'node:url';
import { createServer, type RequestListener, type Server } from 'node:http';
import { getRequestListener } from '@hono/node-server';
import { withPingFastPath } from './http/node-fast-path.ts';
import { createDemoRoutes } from '../demo/routes.ts';
import { widgetBundleRoutes } from './http/widget-bundle.ts';
import { createParley, type Parley, type ParleyOptions } from './server.ts';
import { ensureDemoApp, type App } from './storage/apps.ts';
import { DEFAULT_SQLITE_PATH } from './storage/database.ts';

export interface StartOptions extends ParleyOptions {
  port?: number;
  host?: string;
  /**
   * Serve the demo shop and console, and create the demo app they use (default true: `npm start`).
   * `parley serve` turns it off unless asked (--demo): the demo app answers any origin and its
   * login page signs any identity, which a production server must not publish.
   */
  demo?: boolean;
  /** Print the banner with URLs and credentials (default true). */
  quiet?: boolean;
  /**
   * Let the demo console on this machine fetch the demo app's admin token (default false). Only
   * `npm start` turns it on: a production `parley serve` never hands a token to a browser.
   */
  demoConsoleToken?: boolean;
}

export interface RunningServer {
  url: string;
  port: number;
  /** The demo app, when the demo is served. */
  demoApp: App | undefined;
  parley: Parley;
  close(): Promise<void>;
}

const WIDGET_BUNDLE = fileURLToPath(new URL('../dist/parley.js', import.meta.url));

export async function startServer(options: StartOptions = {}): Promise<RunningServer> {
  const parley = await createParley({ sqlitePath: DEFAULT_SQLITE_PATH, ...options });
  // The widget's script, which every embedding site loads, with the demo or without.
  parley.app.route('/', widgetBundleRoutes(WIDGET_BUNDLE));
  const demo = options.demo === false ? undefined : await ensureDemoApp(parley.services.db, parley.services.clock);
  const demoApp = demo?.app;
  if (demoApp) {
    parley.app.route('/', createDemoRoutes({
      demoApp: { app_id: demoApp.id, admin_token: demoApp.admin_token, identity_secret: demoApp.identity_secret },
      // The console may fetch the demo token only when the server listens on loopback.
      adminTokenForLocalhost: options.demoConsoleToken === true && isLoopback(options.host ?? '127.0.0.1'),
    }));
  }
  const server = await listen(parley, options.port ?? 3000, options.host ?? '127.0.0.1');
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : (options.port ?? 3000);
  const url = `http://${options.host && options.host !== '0.0.0.0' ? options.host : 'localhost'}:${port}`;
  if (!options.quiet) {
    const lines = [
      `Parley is running on ${url}`,
      ...(demoApp ? [`  shop (demo host page):  ${url}/`, `  operator console:       ${url}/console`] : []),
      `  health:                 ${url}/healthz`,
      `  database:               ${options.postgresUrl ? 'PostgreSQL' : (options.sqlitePath ?? DEFAULT_SQLITE_PATH)}`,
      ...(demoApp ? [`Demo app${demo?.created ? ' (created now)' : ''}: app_id=${demoApp.id} admin_token=${demoApp.admin_token}`] : []),
    ];
    process.stderr.write(`${lines.join('\n')}\n`);
  }
  return {
    url, port, demoApp, parley,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      });
      await parley.close();
    },
  };
}

function isLoopback(host: string): boolean {
  return host === '127.0.0.1' || host === 'localhost' || host === '::1';
}

/** The node:http listener: the Hono app answers every request but a ping, which the fast path answers alike (see there why). */
export function requestListener(parley: Parley, hostname?: string): RequestListener {
  return withPingFastPath(getRequestListener(parley.app.fetch, hostname === undefined ? {} : { hostname }), parley.ping, parley.log);
}

function listen(parley: Parley, port: number, hostname: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer(requestListener(parley, hostname));
    server.once('error', reject);
    server.listen(port, hostname, () => resolve(server));
  });
}

// `npm start` / `tsx server-stub/main.ts`: environment variables configure it.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const running = await startServer({
    port: process.env['PORT'] ? Number(process.env['PORT']) : 3000,
    host: process.env['HOST'] ?? '127.0.0.1',
    sqlitePath: process.env['PARLEY_DB'] ?? DEFAULT_SQLITE_PATH,
    demoConsoleToken: true,
    ...(process.env['PARLEY_DATABASE_URL'] ? { postgresUrl: process.env['PARLEY_DATABASE_URL'] } : {}),
  });
  const stop = () => {
    running.close().then(() => process.exit(0), (error: unknown) => {
      console.error(error);
      process.exit(1);
    });
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
