/** The widget's endpoints (CORS, per-app origins). Thin: parse, check, call the service, answer. */
import { Hono, type Context } from 'hono';
import { streamSSE } from 'hono/streaming';
import type { App } from '../storage/apps.ts';
import type { Services } from '../services/context.ts';
import * as messenger from '../services/messenger.ts';
import { claim } from './messenger-gate.ts';
import { readJson } from './read-body.ts';
import * as schemas from './schemas.ts';
import { clientIp, type HttpDeps } from './deps.ts';

export function messengerRoutes(s: Services, deps: HttpDeps): Hono {
  const r = new Hono();

  r.use('*', async (c, next) => {
    const origin = c.req.header('origin');
    if (origin) {
      c.header('access-control-allow-origin', origin);
      c.header('vary', 'Origin');
    }
    if (c.req.method === 'OPTIONS') {
      return c.body(null, 204, { 'access-control-allow-methods': 'GET, POST, OPTIONS', 'access-control-allow-headers': 'content-type', 'access-control-max-age': '600' });
    }
    await next();
  });

  /** The app named by the call, refusing unknown apps (404), foreign origins (403) and floods (429). */
  const appFor = (c: Context, appId: string, visitorId: string): Promise<App> => deps.gate(appId, visitorId, c.req.header('origin'), clientIp(c));

  r.post('/ping', async (c) => c.json(await deps.ping(await readJson(c, false), c.req.header('origin'), clientIp(c))));

  r.post('/conversations', async (c) => {
    const input = schemas.parseInput(schemas.startConversation, await readJson(c, false));
    const user = claim(input.user);
    const app = await appFor(c, input.app_id, input.visitor_id);
    return c.json(await messenger.startConversation(s, app, { visitor_id: input.visitor_id, user, body: input.body, client_id: input.client_id }), 201);
  });

  r.get('/conversations', async (c) => {
    const q = schemas.parseInput(schemas.visitorCall, c.req.query());
    const app = await appFor(c, q.app_id, q.visitor_id);
    return c.json(await messenger.conversationsOf(s, app, q.visitor_id));
  });

  r.post('/conversations/:id/messages', async (c) => {
    const input = schemas.parseInput(schemas.sendMessage, await readJson(c, false));
    const user = claim(input.user);
    const app = await appFor(c, input.app_id, input.visitor_id);
    const { message } = await messenger.sendMessage(s, app, { visitor_id: input.visitor_id, conversation_id: c.req.param('id'), body: input.body, client_id: input.client_id, user });
    return c.json(message, 201);
  });

  r.get('/conversations/:id/messages', async (c) => {
    const q = schemas.parseInput(schemas.messagesQuery, c.req.query());
    const app = await appFor(c, q.app_id, q.visitor_id);
    return c.json(await messenger.messagesOf(s, app, q.visitor_id, c.req.param('id'), q.after));
  });

  r.post('/conversations/:id/read', async (c) => {
    const input = schemas.parseInput(schemas.visitorCall, await readJson(c, false));
    const app = await appFor(c, input.app_id, input.visitor_id);
    await messenger.markConversationRead(s, app, input.visitor_id, c.req.param('id'));
    return c.body(null, 204);
  });

  r.post('/events', async (c) => {
    const input = schemas.parseInput(schemas.event, await readJson(c, false));
    const user = claim(input.user);
    const app = await appFor(c, input.app_id, input.visitor_id);
    await messenger.trackEvent(s, app, { visitor_id: input.visitor_id, name: input.name, metadata: input.metadata, occurred_at: input.occurred_at, user });
    return c.json({ accepted: true }, 202);
  });

  r.post('/logout', async (c) => {
    const input = schemas.parseInput(schemas.visitorCall, await readJson(c, false));
    const app = await appFor(c, input.app_id, input.visitor_id);
    await messenger.logout(s, app, input.visitor_id);
    return c.body(null, 204);
  });

  r.get('/stream', async (c) => {
    const q = schemas.parseInput(schemas.visitorCall, c.req.query());
    const app = await appFor(c, q.app_id, q.visitor_id);
    const contact = await messenger.streamContact(s, app, q.visitor_id);
    return streamSSE(c, async (stream) => {
      // Writes are chained so events leave in the order they were published.
      let chain: Promise<void> = Promise.resolve();
      const unsubscribe = s.hub.subscribe(contact.id, (e) => {
        chain = chain.then(() => stream.writeSSE({ event: e.event, data: JSON.stringify(e.data) })).catch(() => stream.abort());
      });
      stream.onAbort(unsubscribe);
      await stream.writeSSE({ event: 'ready', data: JSON.stringify({ contact_id: contact.id }), retry: 2000 });
      while (!stream.aborted && !deps.signal.aborted) {
        await stream.sleep(deps.keepAliveMs);
        if (!stream.aborted) await stream.write(': keep-alive\n\n');
      }
      unsubscribe();
    });
  });

  return r;
}
