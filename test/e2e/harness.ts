/**
 * Shared plumbing for the browser end-to-end tests: find Chromium, start a fresh server with a
 * fresh database, drive the widget inside its shadow root, and call the admin API to check what
 * the pages claim.
 */
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Locator, type Page } from 'playwright-core';
import { startServer, type RunningServer } from '../../server-stub/main.ts';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const resultsDir = join(repoRoot, 'test-results', 'e2e');
export const axePath = join(repoRoot, 'node_modules', 'axe-core', 'axe.min.js');
const widgetBundle = join(repoRoot, 'dist', 'parley.js');

export const chromiumPath = process.env['PARLEY_CHROMIUM'] || '/usr/bin/chromium';
/** CI sets PARLEY_REQUIRE_BROWSER=1: there a missing browser fails the run instead of skipping. */
export const browserRequired = process.env['PARLEY_REQUIRE_BROWSER'] === '1';

/** Why the browser tests cannot run here, or null when Chromium is available. */
export function browserMissingReason(): string | null {
  try {
    accessSync(chromiumPath, constants.X_OK);
    return null;
  } catch {
    return `no executable Chromium at ${chromiumPath} (install Debian's "chromium" package or set PARLEY_CHROMIUM)`;
  }
}

const LAUNCH_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath, headless: true, args: LAUNCH_ARGS, timeout: 30_000 });
}

export interface Harness {
  server: RunningServer;
  browser: Browser;
  base: string;
  admin: Admin;
  close(): Promise<void>;
}

/** A fresh server on a random port with a database in a new temporary folder, and a browser. */
export async function startHarness(): Promise<Harness> {
  const missing = browserMissingReason();
  if (missing) throw new Error(`PARLEY_REQUIRE_BROWSER=1 but the browser tests cannot run: ${missing}`);
  if (!existsSync(widgetBundle)) {
    throw new Error(`The widget bundle ${widgetBundle} is missing: run \`npm run build\` first (\`npm test\` does).`);
  }
  mkdirSync(resultsDir, { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), 'parley-e2e-'));
  const server = await startServer({ port: 0, host: '127.0.0.1', sqlitePath: join(dir, 'parley.db'), quiet: true, demoConsoleToken: true });
  let browser: Browser;
  try {
    browser = await launchBrowser();
  } catch (err) {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const base = server.url;
  return {
    server,
    browser,
    base,
    admin: createAdmin(base, server.demoApp!.admin_token),
    async close() {
      await browser.close().catch(() => undefined);
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A new browser profile: its own cookies, storage and IndexedDB, like a different person. */
export async function newVisitor(h: Harness, options: BrowserContextOptions = {}): Promise<{ context: BrowserContext; page: Page; errors: string[] }> {
  const context = await h.browser.newContext({ viewport: { width: 1280, height: 860 }, ...options });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  return { context, page, errors };
}

// ---------------------------------------------------------------- admin API

export interface Contact {
  id: string;
  role: 'visitor' | 'lead' | 'user';
  user_id: string | null;
  email: string | null;
  name: string | null;
  created_via: string;
  conversation_ids?: string[];
  merge_pending_into?: { id: string } | null;
}
export interface Merge {
  id: string;
  from: string;
  into: string;
  trigger: string;
  conversations_moved: number;
  events_moved: number;
}
export interface Message {
  id: string;
  body: string;
  author: { type: 'contact' | 'agent'; id: string };
}

export interface Admin {
  get<T>(path: string): Promise<T>;
  post<T>(path: string, body: unknown): Promise<T>;
  contacts(role: Contact['role']): Promise<Contact[]>;
  contact(id: string): Promise<Contact>;
  merges(): Promise<Merge[]>;
  conversationsOf(contactId: string): Promise<{ id: string }[]>;
  messages(conversationId: string): Promise<Message[]>;
}

function createAdmin(base: string, token: string): Admin {
  const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const res = await fetch(base + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    if (!res.ok) throw new Error(`${method} ${path} answered ${res.status}: ${await res.text()}`);
    return (await res.json()) as T;
  };
  const admin: Admin = {
    get: (path) => call('GET', path),
    post: (path, body) => call('POST', path, body),
    contacts: async (role) => (await call<{ data: Contact[] }>('GET', `/v1/contacts?role=${role}&limit=1000`)).data,
    contact: (id) => call('GET', `/v1/contacts/${encodeURIComponent(id)}`),
    merges: async () => (await call<{ data: Merge[] }>('GET', '/v1/merges?limit=1000')).data,
    conversationsOf: async (id) => (await call<{ data: { id: string }[] }>('GET', `/v1/conversations?contact_id=${encodeURIComponent(id)}`)).data,
    messages: async (id) => (await call<{ data: Message[] }>('GET', `/v1/conversations/${encodeURIComponent(id)}/messages?limit=1000`)).data,
  };
  return admin;
}

// ---------------------------------------------------------------- the widget, as a visitor uses it

/** The widget's launcher. Playwright's role locators pierce the widget's open shadow root. */
export function launcher(page: Page): Locator {
  return page.getByRole('button', { name: /^(Open|Close) chat(, \d+ unread)?$/ });
}

/** The widget's panel (role dialog "Chat"). */
export function panel(page: Page): Locator {
  return page.getByRole('dialog', { name: 'Chat' });
}

export async function openWidget(page: Page): Promise<void> {
  if (await panel(page).isVisible()) return;
  await page.getByRole('button', { name: 'Open chat' }).click();
  await panel(page).waitFor();
}

export async function closeWidget(page: Page): Promise<void> {
  if (!(await panel(page).isVisible())) return;
  await page.getByRole('button', { name: 'Close chat' }).click();
  await panel(page).waitFor({ state: 'detached' });
}

/** Types a message in the open thread (starting one if the panel shows the list) and sends it with Enter. */
export async function sendMessage(page: Page, body: string): Promise<void> {
  await openWidget(page);
  const composer = panel(page).getByRole('textbox', { name: 'Message' });
  if (!(await composer.isVisible())) await panel(page).getByRole('button', { name: 'New conversation' }).click();
  await composer.fill(body);
  await composer.press('Enter');
}

/** Opens the conversation whose last message matches `text` from the widget's conversation list. */
export async function openConversation(page: Page, text: string | RegExp): Promise<void> {
  await openWidget(page);
  const back = panel(page).getByRole('button', { name: 'Back to conversations' });
  if (await back.isVisible()) await back.click();
  await panel(page).getByRole('list', { name: 'Conversations' }).getByRole('button', { name: text }).first().click();
}

/** The widget's visitor id, through the public API. */
export async function visitorId(page: Page): Promise<string | null> {
  return page.evaluate(() => (window as unknown as { Parley: (m: string) => string | null }).Parley('getVisitorId'));
}

/** Waits until the real bundle has replaced the snippet's queueing stub and booted. */
export async function widgetReady(page: Page): Promise<void> {
  await page.waitForFunction(() => {
    const p = (window as unknown as { Parley?: ((...args: unknown[]) => unknown) & { q?: unknown } }).Parley;
    return typeof p === 'function' && p.q === undefined && document.querySelector('[data-parley]') !== null;
  });
  await launcher(page).waitFor();
}

// ---------------------------------------------------------------- the shop's own login

export async function shopLogIn(page: Page, who: string | { user_id?: string; email?: string; name?: string }): Promise<void> {
  await page.getByRole('button', { name: 'Log in', exact: true }).click();
  const dialog = page.getByRole('dialog', { name: /Log in to Kettle/ });
  if (typeof who === 'string') {
    await dialog.getByRole('button', { name: `Log in as ${who}` }).click();
  } else {
    if (who.user_id) await dialog.getByLabel('User ID').fill(who.user_id);
    if (who.email) await dialog.getByLabel('Email').fill(who.email);
    if (who.name) await dialog.getByLabel('Name').fill(who.name);
    await dialog.getByRole('button', { name: 'Log in', exact: true }).click();
  }
  await dialog.waitFor({ state: 'hidden' });
}

export async function shopLogOut(page: Page): Promise<void> {
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByRole('button', { name: 'Log in', exact: true }).waitFor();
}

// ---------------------------------------------------------------- accessibility

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: string[];
}

/** Runs axe-core on the page (open shadow roots included) and returns serious and critical violations. */
export async function seriousA11yViolations(page: Page): Promise<AxeViolation[]> {
  await page.addScriptTag({ path: axePath });
  return page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(ctx: Document, opts: object): Promise<{ violations: Array<{ id: string; impact: string | null; help: string; nodes: Array<{ target: unknown[]; failureSummary?: string }> }> }> } }).axe;
    const result = await axe.run(document, { resultTypes: ['violations'] });
    return result.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => `${JSON.stringify(n.target)} ${n.failureSummary ?? ''}`) }));
  });
}

/** Polls `fn` until it gives a value (not undefined, null or false) and returns that value. */
export async function eventually<T>(fn: () => Promise<T | undefined | null | false>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined && value !== null && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${fn.toString().slice(0, 200)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function screenshotPath(name: string): string {
  return join(resultsDir, `${name}.png`);
}
