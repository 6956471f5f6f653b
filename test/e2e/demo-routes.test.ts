/**
 * The demo routes without a browser: what the shop's stand-in back end signs, what it hands out,
 * and the headers that keep the pages safe. Runs everywhere, Chromium or not.
 */
import { createHash, createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createDemoRoutes, inlineScriptHashes } from '../../demo/routes.ts';
import { widgetBundleRoutes } from '../../server-stub/http/widget-bundle.ts';

const demoApp = { app_id: 'app_demo_1', admin_token: 'pat_secret_admin_token', identity_secret: 'the-identity-secret' };
const dir = mkdtempSync(join(tmpdir(), 'parley-demo-routes-'));
const bundle = join(dir, 'parley.js');
writeFileSync(bundle, 'window.Parley=window.Parley||function(){};');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const routes = (over: Partial<Parameters<typeof createDemoRoutes>[0]> = {}) =>
  createDemoRoutes({ demoApp, adminTokenForLocalhost: true, ...over });

const login = (body: unknown, contentType = 'application/json') =>
  routes().request('http://localhost/demo/login', { method: 'POST', headers: { 'content-type': contentType }, body: typeof body === 'string' ? body : JSON.stringify(body) });

describe('demo routes', () => {
  it('signs the user_id with the identity secret, as R14 asks of the host site', async () => {
    const res = await login({ user_id: 'cust_ada', email: 'ada@example.com', name: 'Ada' });
    expect(res.status).toBe(200);
    const expected = createHmac('sha256', demoApp.identity_secret).update('cust_ada').digest('hex');
    expect(await res.json()).toEqual({ user_hash: expected });
  });

  it('signs the email when there is no user_id, exactly as sent', async () => {
    const res = await login({ email: ' Ada@Example.com' });
    const expected = createHmac('sha256', demoApp.identity_secret).update(' Ada@Example.com').digest('hex');
    expect(await res.json()).toEqual({ user_hash: expected });
  });

  it('refuses logins without an identity, with bad JSON or not as JSON (problem+json)', async () => {
    for (const res of [await login({ name: 'Nobody' }), await login('{not json'), await login({ user_id: 42 }), await login('user_id=x', 'application/x-www-form-urlencoded')]) {
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      const problem = (await res.json()) as Record<string, unknown>;
      expect(Object.keys(problem).sort()).toEqual(['detail', 'status', 'title', 'type']);
    }
  });

  it('never puts the identity secret or the admin token into the pages or assets', async () => {
    for (const path of ['/', '/console', '/demo/assets/shop.js', '/demo/assets/console.js', '/demo/config']) {
      const text = await (await routes().request(`http://localhost${path}`)).text();
      expect(text).not.toContain(demoApp.identity_secret);
      expect(text).not.toContain(demoApp.admin_token);
    }
    expect(await (await routes().request('http://localhost/demo/config')).json()).toEqual({ app_id: demoApp.app_id });
  });

  it('serves the shop with the app id and a CSP that allows only its own scripts and the inline snippet by hash', async () => {
    const res = await routes().request('http://localhost/');
    const html = await res.text();
    expect(html).toContain(`content="${demoApp.app_id}"`);
    // The customer snippet (widget/snippet.html) with this server's bundle URL.
    expect(html).toContain("var p=function(){p.q.push(arguments)};p.q=[];w.Parley=p;");
    expect(html).toContain("(window,document,'/widget/parley.js')");
    const csp = res.headers.get('content-security-policy') ?? '';
    const scriptSrc = csp.split(';').map((d) => d.trim()).find((d) => d.startsWith('script-src')) ?? '';
    expect(scriptSrc).not.toContain('unsafe-inline');
    const snippet = /<script>([\s\S]*?)<\/script>/.exec(html)?.[1] ?? '';
    expect(snippet).not.toBe('');
    const hash = createHash('sha256').update(snippet).digest('base64');
    expect(scriptSrc).toBe(`script-src 'self' 'sha256-${hash}'`);
    expect(inlineScriptHashes(html)).toEqual([`sha256-${hash}`]);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it('serves the console with no inline script at all', async () => {
    const res = await routes().request('http://localhost/console');
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self';");
    expect(inlineScriptHashes(await res.text())).toEqual([]);
  });

  it('serves the widget bundle as JavaScript, and a clear 503 before it is built', async () => {
    const ok = await widgetBundleRoutes(bundle).request('http://localhost/widget/parley.js');
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toContain('application/javascript');
    const missing = await widgetBundleRoutes(join(dir, 'nope.js')).request('http://localhost/widget/parley.js');
    expect(missing.status).toBe(503);
    expect(await missing.text()).toContain('npm run build');
  });

  it('serves only plain files from demo/assets', async () => {
    expect((await routes().request('http://localhost/demo/assets/console.css')).headers.get('content-type')).toContain('text/css');
    for (const path of ['/demo/assets/..%2Froutes.ts', '/demo/assets/%2e%2e%2froutes.ts', '/demo/assets/nope.js', '/demo/assets/.hidden.js', '/demo/assets/routes.ts']) {
      expect((await routes().request(`http://localhost${path}`)).status).toBe(404);
    }
  });

  it('hands the admin token only to a console on this machine, and only when allowed', async () => {
    const local = await routes().request('http://localhost/demo/console-token', { headers: { host: 'localhost:3000' } });
    expect(await local.json()).toEqual({ admin_token: demoApp.admin_token });
    const loopback = await routes().request('http://127.0.0.1/demo/console-token', { headers: { host: '127.0.0.1:3000' } });
    expect(loopback.status).toBe(200);
    // DNS rebinding: a remote page reaching this server under its own name.
    const rebound = await routes().request('http://localhost/demo/console-token', { headers: { host: 'evil.example:3000' } });
    expect(rebound.status).toBe(403);
    expect(await rebound.text()).not.toContain(demoApp.admin_token);
    // A request from another machine, as @hono/node-server describes it.
    const remote = await routes().request('http://localhost/demo/console-token', { headers: { host: 'localhost:3000' } }, { incoming: { socket: { remoteAddress: '192.168.1.20' } } });
    expect(remote.status).toBe(403);
    // A remote visitor through a reverse proxy on this machine: loopback socket and Host, but proxy headers.
    for (const header of ['x-forwarded-for', 'forwarded', 'x-real-ip', 'via']) {
      const proxied = await routes().request('http://127.0.0.1/demo/console-token', { headers: { host: '127.0.0.1:3000', [header]: '203.0.113.7' } }, { incoming: { socket: { remoteAddress: '127.0.0.1' } } });
      expect(proxied.status, header).toBe(403);
    }
    const off = await routes({ adminTokenForLocalhost: false }).request('http://localhost/demo/console-token', { headers: { host: 'localhost:3000' } });
    expect(off.status).toBe(404);
  });
});
