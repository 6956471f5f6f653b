import { readFileSync } from 'node:fs';
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
      {
        oxc,
        test: {
          name: 'widget',
          include: ['test/widget/**/*.test.{ts,tsx}'],
          environment: 'happy-dom',
          testTimeout: 15_000,
        },
      },
    ],
  },
});
