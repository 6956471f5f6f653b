import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { build, type Plugin } from 'vite';
import { defineConfig } from 'vitest/config';

// Preact's automatic JSX runtime for widget .tsx files (build and tests alike).
const oxc = { jsx: { runtime: 'automatic' as const, importSource: 'preact' } };

/**
 * After the script-tag build (dist/parley.js, IIFE), builds the ES module entry for bundlers
 * (dist/parley.mjs) and ships its hand-written types (dist/parley.d.mts). Vite's library mode
 * cannot emit an IIFE and a second entry in one pass, hence the second build.
 */
const esmEntry = (): Plugin => ({
  name: 'parley-esm-entry',
  apply: 'build',
  async closeBundle() {
    await build({
      configFile: false,
      logLevel: 'warn',
      oxc,
      build: {
        outDir: 'dist',
        emptyOutDir: false,
        lib: { entry: 'widget/index.ts', formats: ['es'], fileName: () => 'parley.mjs' },
      },
      plugins: [
        {
          name: 'parley-types',
          generateBundle() {
            this.emitFile({ type: 'asset', fileName: 'parley.d.mts', source: readFileSync('widget/parley.d.mts', 'utf8') });
          },
        },
      ],
    });
  },
});

const PG_URL = process.env['PARLEY_TEST_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

/**
 * The whole server suite runs a second time on PostgreSQL. Where PostgreSQL cannot be reached the
 * run is left out with a clear message; with PARLEY_REQUIRE_POSTGRES=1 (CI) it is kept, so an
 * unreachable database fails the tests instead of passing quietly.
 */
async function postgresProject() {
  const { hostname, port } = new URL(PG_URL);
  const reachable = await new Promise<boolean>((resolve) => {
    const socket = connect({ host: hostname, port: Number(port || 5432) });
    socket.setTimeout(1000);
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('timeout', () => { socket.destroy(); resolve(false); });
    socket.once('error', () => resolve(false));
  });
  if (!reachable && process.env['PARLEY_REQUIRE_POSTGRES'] !== '1') {
    console.warn(`\n[parley] PostgreSQL run of the server suite SKIPPED: nothing answers at ${hostname}:${port || 5432} (set PARLEY_TEST_DATABASE_URL, or PARLEY_REQUIRE_POSTGRES=1 to make this a failure).\n`);
    return [];
  }
  return [{
    test: {
      name: 'server-pg',
      include: ['test/server/**/*.test.ts'],
      environment: 'node',
      testTimeout: 30_000,
      env: { PARLEY_TEST_DIALECT: 'postgres', PARLEY_TEST_DATABASE_URL: PG_URL },
    },
  }];
}

// One config for the widget build and for every test project.
export default defineConfig({
  oxc,
  plugins: [esmEntry()],
  build: {
    outDir: 'dist',
    target: 'es2020',
    lib: { entry: 'widget/embed.ts', formats: ['iife'], name: 'ParleyBundle', fileName: () => 'parley.js' },
  },
  test: {
    projects: [
      {
        test: {
          name: 'server',
          include: ['test/server/**/*.test.ts'],
          environment: 'node',
          testTimeout: 30_000,
        },
      },
      ...(await postgresProject()),
      {
        oxc,
        test: {
          name: 'widget',
          include: ['test/widget/**/*.test.{ts,tsx}'],
          environment: 'happy-dom',
          testTimeout: 15_000,
        },
      },
      {
        // Real Chromium against a real server: after the unit projects, one file at a time.
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          environment: 'node',
          testTimeout: 60_000,
          hookTimeout: 60_000,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
