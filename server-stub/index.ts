/**
 * Parley's reference server. Public names only; everything else is internal.
 *
 * @example
 * const parley = await createParley({ sqlitePath: 'data/parley.db' });
 * const res = await parley.app.request('/healthz');
 */
export { createParley, type Parley, type ParleyOptions } from './server.ts';
export { startServer, type RunningServer, type StartOptions } from './main.ts';
export { createApp as createAppRecord, findApp, ensureDemoApp, type App } from './storage/apps.ts';
export { userHash } from './domain/verification.ts';
