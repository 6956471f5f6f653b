/**
 * The demo: a fictional shop that embeds the widget with the customer snippet, and an operator
 * console that drives the admin API. Mounted at `/` on the same origin as the API.
 *
 * @example
 * ```ts
 * app.route('/', createDemoRoutes({ demoApp, adminTokenForLocalhost: true }));
 * ```
 *
 * The pages are plain files in this folder (no build step); this module only serves them, adds
 * security headers, and answers the three small demo endpoints that stand in for a real shop's
 * back end: signing the logged-in identity (the identity secret never reaches the page), the app
 * id, and, for a local operator only, the admin token.
 */
import { createHash, createHmac } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Hono } from 'hono';
import type { Context } from 'hono';

export interface DemoApp {
  app_id: string;
  admin_token: string;
  identity_secret: string;
}

export interface DemoRoutesOptions {
  demoApp: DemoApp;
  /**
   * Hand the demo app's admin token to the console when it is opened from this machine.
   * Off, the operator pastes the token (printed by `npm start`) into the console.
   */
  adminTokenForLocalhost: boolean;
}

const demoDir = fileURLToPath(new URL('./', import.meta.url));
const assetsDir = fileURLToPath(new URL('./assets/', import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  css: 'text/css; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  svg: 'image/svg+xml',
  png: 'image/png',
  ico: 'image/x-icon',
  csv: 'text/csv; charset=utf-8',
  txt: 'text/plain; charset=utf-8',
};

const MAX_LOGIN_BODY = 64 * 1024;

export function createDemoRoutes(opts: DemoRoutesOptions): Hono {
  const { demoApp, adminTokenForLocalhost } = opts;
  const app = new Hono();

  app.use('*', async (c, next) => {
    await next();
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('Referrer-Policy', 'no-referrer');
  });

  app.get('/', async (c) => {
    const template = await readFile(`${demoDir}shop.html`, 'utf8');
    const html = template.replaceAll('{{APP_ID}}', escapeHtml(demoApp.app_id));
    return htmlPage(c, html);
  });

  app.get('/console', async (c) => {
    const html = await readFile(`${demoDir}console.html`, 'utf8');
    return htmlPage(c, html);
  });

  app.get('/demo/assets/:name', async (c) => {
    const name = c.req.param('name');
    const ext = /^[a-z0-9][a-z0-9._-]*\.([a-z0-9]+)$/i.exec(name)?.[1]?.toLowerCase();
    const type = ext === undefined ? undefined : CONTENT_TYPES[ext];
    // Only plain file names that exist in demo/assets: no traversal, no dot files.
    if (type === undefined || name.includes('..') || !(await readdir(assetsDir)).includes(name)) {
      return problem(c, 404, 'Not found', `No demo asset named ${JSON.stringify(name)}.`);
    }
    const data = await readFile(`${assetsDir}${name}`);
    return c.body(new Uint8Array(data), 200, {
      'Content-Type': type,
      'Cache-Control': 'no-cache',
    });
  });

  app.get('/demo/config', (c) => c.json({ app_id: demoApp.app_id }, 200, { 'Cache-Control': 'no-store' }));

  app.post('/demo/login', async (c) => {
    const contentType = c.req.header('content-type') ?? '';
    // JSON only: a cross-site HTML form cannot send it without a CORS preflight.
    if (!/^application\/json\b/i.test(contentType)) {
      return problem(c, 400, 'Unsupported content type', 'Send the login as application/json.');
    }
    const raw = await c.req.arrayBuffer();
    if (raw.byteLength > MAX_LOGIN_BODY) {
      return problem(c, 413, 'Body too large', 'The login body must be at most 64 KiB.');
    }
    let body: unknown;
    try {
      body = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(raw));
    } catch {
      return problem(c, 400, 'Malformed JSON', 'The login body is not valid UTF-8 JSON.');
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      return problem(c, 400, 'Invalid login', 'Expected an object { user_id?, email?, name? }.');
    }
    const { user_id: userId, email } = body as Record<string, unknown>;
    for (const [field, value] of [['user_id', userId], ['email', email]] as const) {
      if (value !== undefined && value !== null && typeof value !== 'string') {
        return problem(c, 400, 'Invalid login', `${field} must be a string.`);
      }
    }
    // Sign exactly the string the page will send to the widget (rule R14).
    const signed = typeof userId === 'string' && userId !== '' ? userId : typeof email === 'string' && email !== '' ? email : undefined;
    if (signed === undefined) {
      return problem(c, 400, 'Invalid login', 'Give a user_id or an email to log in.');
    }
    const userHash = createHmac('sha256', demoApp.identity_secret).update(signed, 'utf8').digest('hex');
    return c.json({ user_hash: userHash }, 200, { 'Cache-Control': 'no-store' });
  });

  app.get('/demo/console-token', (c) => {
    if (!adminTokenForLocalhost) {
      return problem(c, 404, 'Not available', 'This server does not hand out the admin token; paste it into the console.');
    }
    // A reverse proxy on the same machine makes a remote visitor look local (loopback socket and
    // Host); proxies announce themselves with these headers, so any of them means "not local".
    const proxied = ['forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-real-ip', 'via'].some((h) => c.req.header(h) !== undefined);
    if (proxied || !isLocalRequest(c)) {
      return problem(
        c,
        403,
        'Local operators only',
        'The admin token is only handed to a console opened on this machine (http://localhost). Paste it instead.',
      );
    }
    return c.json({ admin_token: demoApp.admin_token }, 200, { 'Cache-Control': 'no-store' });
  });

  return app;
}

/** Serves a page with a strict CSP: scripts only from this origin, plus the inline snippet by hash. */
function htmlPage(c: Context, html: string): Response {
  const hashes = inlineScriptHashes(html).map((h) => `'${h}'`);
  const csp = [
    "default-src 'self'",
    ['script-src', "'self'", ...hashes].join(' '),
    // The widget styles its shadow root with <style> elements; scripts stay locked down.
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
  return c.html(html, 200, {
    'Content-Security-Policy': csp,
    'Cache-Control': 'no-cache',
  });
}

/**
 * CSP hashes of the page's inline scripts. The shop keeps the customer snippet inline, exactly as
 * a customer pastes it, and allows it by hash instead of `'unsafe-inline'`.
 */
export function inlineScriptHashes(html: string): string[] {
  const hashes: string[] = [];
  const re = /<script(\s[^>]*)?>([\s\S]*?)<\/script>/gi;
  for (const m of html.matchAll(re)) {
    const attrs = m[1] ?? '';
    const content = m[2] ?? '';
    if (/\ssrc\s*=/i.test(attrs) || content.trim() === '') continue;
    hashes.push(`sha256-${createHash('sha256').update(content, 'utf8').digest('base64')}`);
  }
  return hashes;
}

/**
 * True when the request both comes from a loopback address (when the socket is known) and names
 * a loopback host (defeats DNS rebinding, where a remote page reaches us under its own name).
 */
function isLocalRequest(c: Context): boolean {
  const host = (c.req.header('host') ?? '').toLowerCase();
  const hostname = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0] ?? '';
  if (!['localhost', '127.0.0.1', '[::1]'].includes(hostname)) return false;
  const address = remoteAddress(c.env);
  if (address === undefined) return true;
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

function remoteAddress(env: unknown): string | undefined {
  if (typeof env !== 'object' || env === null) return undefined;
  const bindings = (env as { server?: unknown }).server ?? env;
  const incoming = (bindings as { incoming?: { socket?: { remoteAddress?: unknown } } }).incoming;
  const address = incoming?.socket?.remoteAddress;
  return typeof address === 'string' ? address : undefined;
}

/** The API's error shape (application/problem+json), with types under the API's problem base. */
function problem(c: Context, status: 400 | 403 | 404 | 413, title: string, detail: string): Response {
  const slug = title.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
  return c.body(JSON.stringify({ type: `https://parley.dev/problems/demo-${slug}`, title, status, detail }), status, {
    'Content-Type': 'application/problem+json',
  });
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}
