/**
 * The whole product in a real browser: the demo shop embeds the built widget with its snippet,
 * the operator console drives the admin API, one fresh server and database for the run.
 *
 * Scenarios 1 to 4 are one story in one browser profile (anonymous visitor, login, reply,
 * logout); the others each use a fresh profile. Every UI claim is also checked on the admin API.
 */
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  browserMissingReason,
  browserRequired,
  chromiumPath,
  closeWidget,
  eventually,
  launcher,
  newVisitor,
  openConversation,
  openWidget,
  panel,
  screenshotPath,
  sendMessage,
  seriousA11yViolations,
  shopLogIn,
  shopLogOut,
  startHarness,
  visitorId,
  widgetReady,
  type Contact,
  type Harness,
} from './harness.ts';

const missing = browserMissingReason();
const skip = missing !== null && !browserRequired;
if (skip) {
  console.warn(
    `\n*** Browser end-to-end tests SKIPPED: ${missing}.\n` +
      `*** Install Chromium (apt-get install chromium) or point PARLEY_CHROMIUM at one.\n` +
      `*** Set PARLEY_REQUIRE_BROWSER=1 (CI does) to make a missing browser fail the run.\n`,
  );
}

const title = skip ? `demo in a real browser: SKIPPED, ${missing}` : `demo in a real browser (Chromium at ${chromiumPath})`;

describe.skipIf(skip)(title, () => {
  let h: Harness;
  let story: { context: BrowserContext; page: Page; errors: string[] };
  let operator: { context: BrowserContext; page: Page; errors: string[] };
  const extraContexts: BrowserContext[] = [];

  /** Contacts in the console's list for one role, as the operator sees them. */
  const consoleList = (role: Contact['role']) => operator.page.locator(`#list-${role} .contact`);

  beforeAll(async () => {
    h = await startHarness();
    story = await newVisitor(h);
    operator = await newVisitor(h, { viewport: { width: 1400, height: 900 } });
  });

  afterAll(async () => {
    for (const c of extraContexts) await c.close().catch(() => undefined);
    await h?.close();
  });

  async function visitor(options: Parameters<typeof newVisitor>[1] = {}) {
    const v = await newVisitor(h, options);
    extraContexts.push(v.context);
    return v;
  }

  async function openShop(page: Page) {
    await page.goto(`${h.base}/`);
    await widgetReady(page);
  }

  it('1: an anonymous visitor sends a message; the console shows a new lead with that conversation (R1)', async () => {
    const { page } = story;
    await openShop(page);
    await sendMessage(page, 'Hello! Is the ash-glaze teapot dishwasher safe?');
    // Delivered: the server echoed it, so it is no longer waiting in the outbox.
    await expect.poll(() => panel(page).getByText('Sending…').count(), { timeout: 5000 }).toBe(0);

    const leads = await h.admin.contacts('lead');
    expect(leads).toHaveLength(1);
    const lead = leads[0]!;
    expect(lead.created_via).toBe('messenger');

    await operator.page.goto(`${h.base}/console`);
    await expect.poll(() => consoleList('lead').count(), { timeout: 5000 }).toBe(1);
    await consoleList('lead').first().getByRole('button').first().click();
    await operator.page.locator('#thread').getByText('Hello! Is the ash-glaze teapot dishwasher safe?').waitFor({ timeout: 5000 });
    expect(await operator.page.locator('#detail-role').textContent()).toBe('lead');
  });

  it('2: logging in merges the lead live: the console drops it without a reload, the user holds the conversation, the audit log shows a cookie merge (R2, R5, R6, R13)', async () => {
    const { page } = story;
    const [lead] = await h.admin.contacts('lead');
    expect(lead).toBeDefined();
    // A marker that a reload of the console would wipe.
    await operator.page.evaluate(() => ((window as unknown as { marker: number }).marker = 42));

    await shopLogIn(page, 'Ada Lovelace');

    await expect.poll(() => consoleList('lead').count(), { timeout: 5000 }).toBe(0);
    await operator.page.locator('#list-user .contact', { hasText: 'Ada Lovelace' }).waitFor({ timeout: 5000 });
    await operator.page.locator('#audit li[data-trigger="cookie"]', { hasText: 'Ada Lovelace' }).waitFor({ timeout: 5000 });
    // The console followed its selected lead into the user (the lead id is a tombstone now).
    await operator.page.locator('#detail-title', { hasText: 'Ada Lovelace' }).waitFor({ timeout: 5000 });
    await operator.page.locator('#thread').getByText('Hello! Is the ash-glaze teapot dishwasher safe?').waitFor();
    expect(await operator.page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(42);

    const [ada] = (await h.admin.get<{ data: Contact[] }>('/v1/contacts?user_id=cust_ada')).data;
    expect(ada?.role).toBe('user');
    const merges = await h.admin.merges();
    expect(merges).toHaveLength(1);
    expect(merges[0]).toMatchObject({ from: lead!.id, into: ada!.id, trigger: 'cookie', conversations_moved: 1 });
    const convs = await h.admin.conversationsOf(ada!.id);
    expect(convs).toHaveLength(1);
    expect((await h.admin.contact(lead!.id)).id).toBe(ada!.id);

    // The widget shows the conversation under the user, without a reload.
    await openConversation(page, /Is the ash-glaze teapot dishwasher safe/);
    await panel(page).getByText('Hello! Is the ash-glaze teapot dishwasher safe?').waitFor();
  });

  it('3: an operator reply appears in the widget within a second; the unread badge shows while the panel is closed', async () => {
    const { page } = story;
    await expect(panel(page).getByRole('textbox', { name: 'Message' }).isVisible()).resolves.toBe(true);

    const reply = 'Hi Ada! It is, though hand washing keeps the glaze bright for longer.';
    await operator.page.getByLabel(/^Reply to/).fill(reply);
    const sent = operator.page.waitForResponse((r) => r.url().includes('/reply') && r.request().method() === 'POST');
    await operator.page.getByRole('button', { name: 'Send reply' }).click();
    expect((await sent).status()).toBe(201);
    const t0 = Date.now();
    await panel(page).getByText(reply).waitFor({ timeout: 1000 });
    const latency = Date.now() - t0;
    console.info(`operator reply reached the widget ${latency} ms after the server accepted it`);
    expect(latency).toBeLessThan(1000);
    await page.screenshot({ path: screenshotPath('widget-conversation') });

    // Panel closed: the next reply lights up the launcher's unread badge.
    await closeWidget(page);
    await operator.page.getByLabel(/^Reply to/).fill('Would you like a care card in the parcel?');
    await operator.page.getByRole('button', { name: 'Send reply' }).click();
    await expect.poll(() => launcher(page).textContent(), { timeout: 3000 }).toMatch(/1\s*unread/);
    await page.screenshot({ path: screenshotPath('widget-unread-badge') });
    await operator.page.screenshot({ path: screenshotPath('console-after-login') });

    // Opening the conversation reads it: the badge goes away.
    await openConversation(page, /care card/);
    await panel(page).getByText('Would you like a care card in the parcel?').waitFor();
    await closeWidget(page);
    await expect.poll(() => launcher(page).textContent(), { timeout: 3000 }).not.toMatch(/unread/);
  });

  it('4: log out, then a second user logs in on the same browser: they see none of the first user\'s conversations, nothing is merged into them (R8, R15)', async () => {
    const { page, context } = story;
    const before = await visitorId(page);
    const cookieBefore = (await context.cookies()).find((c) => c.value === before);
    expect(cookieBefore).toBeDefined();

    await shopLogOut(page);
    await expect.poll(() => visitorId(page)).not.toBe(before);
    expect((await context.cookies()).some((c) => c.value === before)).toBe(false);

    await shopLogIn(page, 'Grace Hopper');
    const grace = await eventually(async () => (await h.admin.get<{ data: Contact[] }>('/v1/contacts?user_id=cust_grace')).data[0]);

    await openWidget(page);
    // Give the widget time to fetch whatever it would show, then check nothing of Ada's is there.
    await page.waitForTimeout(1500);
    const widgetText = (await panel(page).innerText()).toLowerCase();
    expect(widgetText).not.toContain('teapot');
    expect(widgetText).not.toContain('care card');
    await closeWidget(page);

    expect(await h.admin.conversationsOf(grace.id)).toHaveLength(0);
    const [ada] = (await h.admin.get<{ data: Contact[] }>('/v1/contacts?user_id=cust_ada')).data;
    // Ada is still her own user with her conversation; whatever merged into Grace is the fresh
    // anonymous visitor of this browser after the logout (a cookie merge that moves nothing).
    expect((await h.admin.contact(ada!.id)).id).toBe(ada!.id);
    expect(await h.admin.conversationsOf(ada!.id)).toHaveLength(1);
    const merges = await h.admin.merges();
    const adaSide = new Set([ada!.id, ...merges.filter((m) => m.into === ada!.id).map((m) => m.from)]);
    for (const m of merges.filter((m) => m.into === grace.id)) {
      expect(adaSide.has(m.from)).toBe(false);
      expect(m.conversations_moved).toBe(0);
    }
  });

  it('5: offline, the visitor sends two messages, the page reloads, the browser comes back online: both are delivered exactly once', async () => {
    const { context, page } = await visitor();
    // The host page's own files come from a cache while offline (as a service worker would
    // serve them), so the page can reload with the network down; the API is never cached.
    const cache = new Map<string, { status: number; headers: Record<string, string>; body: Buffer }>();
    await context.route(
      (url) => !url.pathname.startsWith('/v1/'),
      async (route) => {
        const url = route.request().url();
        try {
          const res = await route.fetch();
          const body = await res.body();
          cache.set(url, { status: res.status(), headers: res.headers(), body });
          await route.fulfill({ response: res, body });
        } catch {
          const hit = cache.get(url);
          if (hit) await route.fulfill(hit);
          else await route.abort('internetdisconnected');
        }
      },
    );
    await openShop(page);
    const vid = await visitorId(page);

    await context.setOffline(true);
    await sendMessage(page, 'Offline one: do you ship to Norway?');
    await sendMessage(page, 'Offline two: and to Iceland?');
    await panel(page).getByText('Offline two: and to Iceland?').waitFor();

    await page.reload();
    await widgetReady(page);
    expect(await visitorId(page)).toBe(vid);
    await page.waitForTimeout(500);

    await context.setOffline(false);
    const delivered = async () => {
      const leads = await h.admin.contacts('lead');
      for (const lead of leads) {
        for (const conv of await h.admin.conversationsOf(lead.id)) {
          const bodies = (await h.admin.messages(conv.id)).map((m) => m.body);
          if (bodies.some((b) => b.startsWith('Offline one'))) return bodies;
        }
      }
      return [];
    };
    await expect.poll(async () => (await delivered()).filter((b) => b.startsWith('Offline')).length, { timeout: 15_000 }).toBe(2);
    // Let any retry still in flight land, then check again: exactly once each.
    await page.waitForTimeout(2500);
    const bodies = await delivered();
    expect(bodies.filter((b) => b === 'Offline one: do you ship to Norway?')).toHaveLength(1);
    expect(bodies.filter((b) => b === 'Offline two: and to Iceland?')).toHaveLength(1);

    await openWidget(page);
    const back = panel(page).getByRole('button', { name: 'Back to conversations' });
    if (!(await back.isVisible())) await openConversation(page, /Offline/);
    await expect.poll(() => panel(page).getByText('Sending…').count(), { timeout: 5000 }).toBe(0);
    await expect.poll(() => panel(page).getByText('Offline one: do you ship to Norway?').count()).toBe(1);
    await expect.poll(() => panel(page).getByText('Offline two: and to Iceland?').count()).toBe(1);
  });

  it('6: a reload keeps the visitor and their conversation', async () => {
    const { context, page } = await visitor();
    await openShop(page);
    await sendMessage(page, 'Do the celadon cups come gift-wrapped?');
    await expect.poll(() => panel(page).getByText('Sending…').count(), { timeout: 5000 }).toBe(0);
    const vid = await visitorId(page);
    const cookies = (await context.cookies()).filter((c) => c.value === vid);
    expect(cookies).toHaveLength(1);

    await page.reload();
    await widgetReady(page);
    expect(await visitorId(page)).toBe(vid);
    await openConversation(page, /celadon cups/);
    await panel(page).getByText('Do the celadon cups come gift-wrapped?').waitFor();
    expect((await context.cookies()).filter((c) => c.value === vid)).toHaveLength(1);
  });

  it('7: a message full of HTML and script shows as text in the widget and the console; no script runs', async () => {
    // bypassCSP: the pages' strict CSP would block inline handlers anyway; this proves the
    // rendering itself never turns text into markup.
    const trap = () => {
      (window as unknown as { pwned: string[] }).pwned = [];
      window.alert = () => (window as unknown as { pwned: string[] }).pwned.push('alert');
    };
    const hostile =
      `<img src=x onerror="window.pwned.push('img')"><script>window.pwned.push('script')</script>` +
      `<a href="javascript:window.pwned.push('link')">click me</a><svg onload="window.pwned.push('svg')"></svg>` +
      ` javascript:window.pwned.push('bare') <b>bold?</b>`;
    const v = await visitor({ bypassCSP: true });
    await v.context.addInitScript(trap);
    const op = await visitor({ bypassCSP: true, viewport: { width: 1400, height: 900 } });
    await op.context.addInitScript(trap);
    const dialogs: string[] = [];
    v.page.on('dialog', (d) => void d.dismiss().then(() => dialogs.push(d.message())));
    op.page.on('dialog', (d) => void d.dismiss().then(() => dialogs.push(d.message())));

    await openShop(v.page);
    await sendMessage(v.page, hostile);
    await expect.poll(() => panel(v.page).getByText('Sending…').count(), { timeout: 5000 }).toBe(0);

    // The operator opens that lead and answers with the same text.
    await op.page.goto(`${h.base}/console`);
    const leadId = await eventually(async () => {
      for (const lead of await h.admin.contacts('lead')) {
        for (const conv of await h.admin.conversationsOf(lead.id)) {
          if ((await h.admin.messages(conv.id)).some((m) => m.body === hostile)) return lead.id;
        }
      }
      return undefined;
    });
    await op.page.locator(`.contact[data-contact-id="${leadId}"] .contact-select`).click();
    await op.page.locator('#thread .msg-body', { hasText: 'click me' }).first().waitFor({ timeout: 5000 });
    await op.page.getByLabel(/^Reply to/).fill(hostile);
    await op.page.getByRole('button', { name: 'Send reply' }).click();
    await expect.poll(() => op.page.locator('#thread .msg-body').count(), { timeout: 5000 }).toBe(2);
    await expect.poll(() => panel(v.page).getByText('click me', { exact: false }).count(), { timeout: 5000 }).toBe(2);

    for (const page of [v.page, op.page]) {
      const report = await page.evaluate(() => {
        // Every element in the document and in open shadow roots.
        const all: Element[] = [];
        const walk = (root: Document | ShadowRoot) => {
          for (const el of Array.from(root.querySelectorAll('*'))) {
            all.push(el);
            if (el.shadowRoot) walk(el.shadowRoot);
          }
        };
        walk(document);
        return {
          pwned: (window as unknown as { pwned: string[] }).pwned,
          imgX: all.filter((el) => el.tagName === 'IMG' && el.getAttribute('src') === 'x').length,
          scripts: all.filter((el) => el.tagName === 'SCRIPT' && (el.textContent ?? '').includes('pwned')).length,
          jsLinks: all.filter((el) => el.tagName === 'A' && /^\s*javascript:/i.test(el.getAttribute('href') ?? '')).length,
          handlers: all.filter((el) => Array.from(el.attributes).some((a) => /^on/i.test(a.name))).length,
          bold: all.filter((el) => el.tagName === 'B' && el.textContent === 'bold?').length,
          text: all.filter((el) => (el.textContent ?? '').includes('<img src=x onerror=')).length,
        };
      });
      expect(report.pwned).toEqual([]);
      expect(report).toMatchObject({ imgX: 0, scripts: 0, jsLinks: 0, handlers: 0, bold: 0 });
      expect(report.text).toBeGreaterThan(0);
    }
    expect(dialogs).toEqual([]);
    await op.page.screenshot({ path: screenshotPath('console-hostile-text') });
    await v.page.screenshot({ path: screenshotPath('widget-hostile-text') });

    // Without bypassing it, both pages are served with a CSP that forbids inline script.
    for (const path of ['/', '/console']) {
      const csp = (await fetch(`${h.base}${path}`)).headers.get('content-security-policy') ?? '';
      const scriptSrc = csp.split(';').map((d) => d.trim()).find((d) => d.startsWith('script-src')) ?? '';
      expect(scriptSrc).toContain("'self'");
      expect(scriptSrc).not.toContain('unsafe-inline');
      expect(csp).toContain("object-src 'none'");
    }
  });

  it('8: the host page\'s aggressive CSS does not change the widget', async () => {
    const { page } = await visitor();
    await openShop(page);
    await sendMessage(page, 'Checking the styles');
    await expect.poll(() => panel(page).getByText('Sending…').count(), { timeout: 5000 }).toBe(0);
    // Measured once the message shows as a bubble: just after sending, the list can still show its
    // empty-state line for a moment, and the two measures would then compare different elements.
    await expect.poll(() => page.evaluate(() => document.querySelector('[data-parley]')?.shadowRoot?.querySelector('ol li')?.className ?? ''), { timeout: 5000 }).toMatch(/\bg\b/);

    const measure = () =>
      page.evaluate(() => {
        const root = document.querySelector('[data-parley]')?.shadowRoot;
        if (!root) throw new Error('widget not mounted');
        const pick = (sel: string) => {
          const el = root.querySelector(sel);
          if (!el) return null;
          const cs = getComputedStyle(el);
          const r = el.getBoundingClientRect();
          return {
            box: [Math.round(r.x), Math.round(r.y), Math.round(r.width), Math.round(r.height)],
            style: [cs.fontSize, cs.fontFamily, cs.fontWeight, cs.lineHeight, cs.color, cs.backgroundColor, cs.padding, cs.display, cs.position, cs.borderRadius, cs.textTransform, cs.letterSpacing],
          };
        };
        return {
          launcher: pick('button[aria-controls="parley-panel"]'),
          panel: pick('[role="dialog"]'),
          header: pick('[role="dialog"] h2'),
          composer: pick('textarea'),
          bubble: pick('ol li'),
        };
      });
    const before = await measure();
    await page.screenshot({ path: screenshotPath('widget-before-host-css') });
    expect(before.panel).not.toBeNull();
    await page.addStyleTag({
      content: `
        * { all: unset !important; }
        html, body, div, p, li, ol, ul, button, textarea, span, h2 {
          font-size: 42px !important; line-height: 3 !important; font-family: "Comic Sans MS", cursive !important;
          color: red !important; background: yellow !important; padding: 30px !important; margin: 20px !important;
          text-transform: uppercase !important; letter-spacing: 8px !important; border-radius: 0 !important;
          position: static !important; display: block !important; box-sizing: content-box !important;
        }
      `,
    });
    await page.waitForTimeout(300);
    const after = await measure();
    await page.screenshot({ path: screenshotPath('widget-after-host-css') });
    expect(after).toEqual(before);
  });

  it('9: axe-core finds no serious or critical accessibility violations in the open widget and in the console', async () => {
    // bypassCSP only so that axe-core can be injected as an inline script.
    const { page } = await visitor({ bypassCSP: true });
    await openShop(page);
    await sendMessage(page, 'Accessibility check');
    await expect.poll(() => panel(page).getByText('Sending…').count(), { timeout: 5000 }).toBe(0);
    const widgetViolations = await seriousA11yViolations(page);

    // The console with a contact selected, a conversation and a bulk-merge report on screen.
    const op = await visitor({ bypassCSP: true, viewport: { width: 1400, height: 900 } });
    await op.page.goto(`${h.base}/console`);
    await op.page.locator('#list-lead .contact-select').first().click();
    await op.page.locator('#thread .msg').first().waitFor({ timeout: 5000 });
    await op.page.getByRole('button', { name: 'Dry run' }).click();
    await op.page.locator('#bulk-report h4').waitFor();
    const consoleViolations = await seriousA11yViolations(op.page);

    // And the token screen an operator sees without the local token.
    await op.page.getByRole('button', { name: 'Change token' }).click();
    const tokenViolations = await seriousA11yViolations(op.page);

    expect({ widget: widgetViolations, console: consoleViolations, token: tokenViolations }).toEqual({ widget: [], console: [], token: [] });
  });

  it('10: a users CSV uploaded in the console, then a bulk merge: the matching leads merge (R3, R4, R11)', async () => {
    // Three anonymous visitors chat and leave an email through the widget's prompt.
    const people = [
      { email: 'mia.wong@example.com', text: 'Is the oolong good cold-brewed?' },
      { email: 'sam.okafor@example.com', text: 'Can I change my delivery address?' },
      { email: 'someone.else@example.com', text: 'Do you have a shop in Lyon?' },
    ];
    for (const p of people) {
      const { page } = await visitor();
      await openShop(page);
      await sendMessage(page, p.text);
      await expect.poll(() => panel(page).getByText('Sending…').count(), { timeout: 5000 }).toBe(0);
      await panel(page).getByLabel('Get notified by email').fill(p.email);
      await panel(page).getByRole('button', { name: 'Notify me' }).click();
      await panel(page).getByText(`We will notify you at ${p.email}`).waitFor({ timeout: 5000 });
    }
    const leadByEmail = async (email: string) => (await h.admin.contacts('lead')).find((c) => c.email === email);
    const mia = await leadByEmail('mia.wong@example.com');
    const sam = await leadByEmail('sam.okafor@example.com');
    expect(mia && sam && (await leadByEmail('someone.else@example.com'))).toBeTruthy();

    const op = await visitor({ viewport: { width: 1400, height: 900 } });
    await op.page.goto(`${h.base}/console`);
    await op.page.locator('#list-lead .contact', { hasText: 'mia.wong@example.com' }).waitFor({ timeout: 5000 });

    const csv = [
      'user_id,email,name,plan',
      'cust_1001,mia.wong@example.com,Mia Wong,tea-club',
      'cust_1002,Sam.Okafor@Example.com ,Sam Okafor,occasional',
      'cust_1003,null,Broken Row,tea-club',
      'cust_1004,lea.martin@example.com,Léa Martin,tea-club',
    ].join('\n');
    await op.page.getByLabel('Users CSV file').setInputFiles({ name: 'users.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
    await op.page.getByRole('button', { name: 'Upload and import' }).click();
    const importReport = op.page.locator('#import-report');
    await importReport.locator('h4').waitFor({ timeout: 10_000 });
    expect(await importReport.locator('.stats div', { hasText: 'Created' }).locator('dd').textContent()).toBe('3');
    expect(await importReport.locator('.stats div', { hasText: 'Failed' }).locator('dd').textContent()).toBe('1');
    // The fourth line of the file is the broken row.
    await importReport.getByText(/^Line 4: /).waitFor({ timeout: 3000 });

    // The import only marks (R5): the console shows who each lead will merge into.
    await op.page.locator('#list-lead .contact', { hasText: 'mia.wong@example.com' }).getByText(/Waiting to merge into\s*Mia Wong/).waitFor({ timeout: 5000 });
    await op.page.locator('#list-lead .contact', { hasText: 'sam.okafor@example.com' }).getByText(/Waiting to merge into\s*Sam Okafor/).waitFor({ timeout: 5000 });

    // The operator opens Mia's lead: her conversation, and who she will merge into.
    await op.page.locator('#list-lead .contact', { hasText: 'mia.wong@example.com' }).locator('.contact-select').click();
    await op.page.locator('#thread').getByText(people[0]!.text).waitFor({ timeout: 5000 });

    await op.page.getByRole('button', { name: 'Dry run' }).click();
    const bulkReport = op.page.locator('#bulk-report');
    await bulkReport.getByText('Dry run: 2 leads would merge.', { exact: false }).waitFor({ timeout: 10_000 });
    expect(await leadByEmail('mia.wong@example.com')).toBeDefined();
    await op.page.screenshot({ path: screenshotPath('console-bulk-dry-run') });

    await op.page.getByRole('button', { name: /^Run merge/ }).click();
    await bulkReport.getByText('Done: 2 leads merged.').waitFor({ timeout: 10_000 });
    expect(await bulkReport.locator('.stats div', { hasText: 'Conversations' }).locator('dd').textContent()).toBe('2');

    await expect.poll(() => op.page.locator('#list-lead .contact', { hasText: /mia\.wong|sam\.okafor/ }).count(), { timeout: 5000 }).toBe(0);
    await op.page.locator('#list-lead .contact', { hasText: 'someone.else@example.com' }).waitFor();
    await expect.poll(() => op.page.locator('#audit li[data-trigger="bulk"]').count(), { timeout: 5000 }).toBe(2);
    // The selected lead is gone: the console now shows Mia the user, holding the conversation.
    await op.page.locator('#detail-title', { hasText: 'Mia Wong' }).waitFor({ timeout: 5000 });
    await op.page.locator('#thread').getByText(people[0]!.text).waitFor();
    await op.page.screenshot({ path: screenshotPath('console-after-bulk-merge') });

    for (const [lead, userId, text] of [[mia!, 'cust_1001', people[0]!.text], [sam!, 'cust_1002', people[1]!.text]] as const) {
      const [user] = (await h.admin.get<{ data: Contact[] }>(`/v1/contacts?user_id=${userId}`)).data;
      expect((await h.admin.contact(lead.id)).id).toBe(user!.id);
      const convs = await h.admin.conversationsOf(user!.id);
      expect(convs).toHaveLength(1);
      expect((await h.admin.messages(convs[0]!.id))[0]?.body).toBe(text);
    }
    expect(await leadByEmail('someone.else@example.com')).toBeDefined();
  });
});
