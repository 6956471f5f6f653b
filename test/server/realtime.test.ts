import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { App } from '../../server-stub/storage/apps.ts';
import { BASE, startTestServer, type TestServer } from '../support/server-app.ts';
import { operator, widget } from './http/helpers.ts';
import { readSse } from '../support/sse.ts';

let t: TestServer;
let app: App;
beforeEach(async () => {
  t = await startTestServer({ keepAliveMs: 60_000 });
  app = await t.createApp();
});
afterEach(async () => t.close());

/** Opens the SSE stream through the app's fetch and collects parsed events. */
async function openStream(visitorId: string) {
  const controller = new AbortController();
  const res = await t.fetch(new Request(`${BASE}/v1/messenger/stream?app_id=${app.id}&visitor_id=${visitorId}`, { signal: controller.signal }));
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/event-stream');
  const events: { event: string; data: any }[] = [];
  const reader = res.body!.getReader();
  const pump = readSse(reader, (event, data) => {
    if (data) events.push({ event, data: JSON.parse(data) });
  }).catch(() => undefined); // the stream ends with an abort when the test closes it
  const waitFor = async (name: string, n = 1) => {
    const deadline = Date.now() + 2000;
    while (events.filter((e) => e.event === name).length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    return events.filter((e) => e.event === name);
  };
  return { events, waitFor, close: async () => { controller.abort(); await reader.cancel().catch(() => undefined); await pump; } };
}

describe('live stream', () => {
  it('an agent reply reaches every open stream of the contact, with an unread count', async () => {
    const w = widget(t, app);
    const started = await w.start('question');
    const s1 = await openStream(w.visitorId);
    const s2 = await openStream(w.visitorId);
    await s1.waitFor('ready');
    await s2.waitFor('ready');
    await operator(t, app).reply(started.body.conversation.id, 'an answer');
    const [m1] = await s1.waitFor('message');
    const [m2] = await s2.waitFor('message');
    expect(m1?.data).toMatchObject({ body: 'an answer', author: { type: 'agent' }, conversation_id: started.body.conversation.id });
    expect(m2?.data.id).toBe(m1?.data.id);
    expect((await s1.waitFor('unread'))[0]?.data.unread_count).toBe(1);
    await s1.close();
    await s2.close();
  });

  it('R2: a merge sends `merge` to the lead\'s stream, which then follows the user', async () => {
    const w = widget(t, app);
    const started = await w.start('before login');
    const stream = await openStream(w.visitorId);
    await stream.waitFor('ready');
    const login = await w.login({ user_id: 'u-live' });
    await t.drain();
    const [merge] = await stream.waitFor('merge');
    expect(merge?.data).toMatchObject({ from: started.body.contact.id, into: login.body.contact.id, trigger: 'cookie' });
    await operator(t, app).reply(started.body.conversation.id, 'after merge');
    const [message] = await stream.waitFor('message');
    expect(message?.data.body).toBe('after merge');
    await stream.close();
  });

  it('a stream for an unknown visitor is 404', async () => {
    const res = await t.fetch(new Request(`${BASE}/v1/messenger/stream?app_id=${app.id}&visitor_id=unknown-visitor`));
    expect(res.status).toBe(404);
  });
});
