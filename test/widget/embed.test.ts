import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { install } from '../../widget/install.ts';
import './setup.ts';

const snippetJs = () => {
  const html = readFileSync('widget/snippet.html', 'utf8');
  return html.slice(html.indexOf('<script>') + 8, html.indexOf('</script>'));
};
type Win = Record<string, unknown> & { Parley?: ((...a: unknown[]) => unknown) & { q?: ArrayLike<unknown>[] } };
const win = window as unknown as Win;

describe('script-tag embedding', () => {
  afterEach(() => {
    delete win.Parley;
    document.head.querySelectorAll('script').forEach((s) => s.remove());
  });

  it('the snippet defines a queueing stub and asks for the bundle', () => {
    // happy-dom does not load script files: count the snippet's request as a success, quietly.
    const dom = (window as unknown as { happyDOM?: { settings: { handleDisabledFileLoadingAsSuccess: boolean } } }).happyDOM;
    if (dom) dom.settings.handleDisabledFileLoadingAsSuccess = true;
    new Function(snippetJs())();
    expect(typeof win.Parley).toBe('function');
    const script = document.head.querySelector('script[src]') as HTMLScriptElement;
    expect(script.src).toBe('https://chat.example.com/widget/parley.js');
    expect(script.async).toBe(true);
    expect(Array.from(win.Parley!.q![0]!)).toEqual(['boot', { app_id: 'YOUR_APP_ID', api_base: 'https://chat.example.com' }]);
  });

  it('the bundle replays queued calls in order, then dispatches directly', () => {
    const order: string[] = [];
    const api = {
      boot: (s: { app_id: string }) => order.push(`boot:${s.app_id}`),
      update: (d: { email: string }) => order.push(`update:${d.email}`),
      show: () => order.push('show'),
      trackEvent: (n: string) => order.push(`event:${n}`),
    };
    const q: unknown[][] = [];
    const stub = Object.assign((...a: unknown[]) => void q.push(a), { q });
    win.Parley = stub;
    stub('boot', { app_id: 'a1' });
    stub('update', { email: 'x@example.com' });
    stub('show');
    stub('trackEvent', 'viewed');
    const errors = vi.spyOn(console, 'error').mockImplementation(() => {});
    stub('nope');
    install(win, api);
    expect(order).toEqual(['boot:a1', 'update:x@example.com', 'show', 'event:viewed']);
    expect(errors).toHaveBeenCalledWith('[parley] unknown method "nope"');
    expect(win.Parley).not.toBe(stub);
    expect(win.Parley!.q).toBeUndefined();
    win.Parley!('trackEvent', 'later');
    expect(order.at(-1)).toBe('event:later');
    errors.mockRestore();
  });

  it('the built bundle alone defines window.Parley and replays a queue (dist/parley.js)', () => {
    const code = readFileSync('dist/parley.js', 'utf8');
    expect(code).not.toMatch(/^\s*import\s|\bimport\(/m); // self-contained
    const seen: unknown[] = [];
    win.Parley = Object.assign(() => {}, { q: [['onShow', () => seen.push('shown')], ['getVisitorId']] });
    new Function(code)();
    expect(typeof win.Parley).toBe('function');
    expect(win.Parley!.q).toBeUndefined();
    expect(win.Parley!('getVisitorId')).toBeNull();
    delete win.Parley;
    new Function(code)();
    expect(typeof win.Parley).toBe('function');
  });
});

describe('ES module build', () => {
  it('dist/parley.mjs exports the public API and nothing else', async () => {
    const path = '../../dist/parley.mjs'; // a variable: tsc runs before the build creates it
    const mod = (await import(/* @vite-ignore */ path)) as Record<string, unknown>;
    expect(Object.keys(mod).sort()).toEqual(
      ['boot', 'getVisitorId', 'hide', 'onHide', 'onShow', 'onUnreadCountChange', 'show', 'showNewMessage', 'shutdown', 'trackEvent', 'update'],
    );
    expect(readFileSync('dist/parley.d.mts', 'utf8')).toContain('export declare function boot(settings: Settings): Promise<Outcome>;');
  });
});
