/**
 * `GET /widget/parley.js`: the script-tag bundle that every site embedding Parley loads (the
 * snippet's URL), served by every server, with the demo or without.
 */
import { readFile } from 'node:fs/promises';
import { Hono } from 'hono';

export function widgetBundleRoutes(bundlePath: string): Hono {
  const app = new Hono();
  app.get('/widget/parley.js', async (c) => {
    let bundle: Buffer;
    try {
      bundle = await readFile(bundlePath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException | null)?.code === 'ENOENT') {
        return c.text('The Parley widget bundle has not been built yet: run `npm run build`, then reload.\n', 503, { 'Cache-Control': 'no-store', 'Retry-After': '5' });
      }
      throw err;
    }
    return c.body(new Uint8Array(bundle), 200, {
      'Content-Type': 'application/javascript; charset=utf-8',
      'Cache-Control': 'no-cache',
      'X-Content-Type-Options': 'nosniff',
      // The bundle may be loaded by any site that embeds the widget.
      'Cross-Origin-Resource-Policy': 'cross-origin',
    });
  });
  return app;
}
