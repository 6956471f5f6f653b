/** The admin API (server to server, bearer token). Never answers cross-origin browsers. */
import { CsvError } from 'csv-parse';
import { Hono, type Context, type Next } from 'hono';
import { findAppByToken, type App } from '../storage/apps.ts';
import { ServiceError, type Services } from '../services/context.ts';
import * as admin from '../services/admin.ts';
import * as webhooks from '../services/webhooks.ts';
import { bulkMerge } from '../services/bulk-merge.ts';
import { contactsCsvResponse } from '../services/contact-export.ts';
import { ImportError, importUsers } from '../services/user-import.ts';
import { normaliseEmail } from '../domain/identity.ts';
import { readJson } from './read-body.ts';
import * as schemas from './schemas.ts';
import type { HttpDeps } from './deps.ts';

type Env = { Variables: { app: App } };

/**
 * Whether a browser's Origin is the host this request was addressed to (the operator console's
 * own page). Hosts are compared, not schemes: behind a proxy that ends TLS the request reaches us
 * as http:// while the page was https://. The proxy's X-Forwarded-Host counts too, for proxies that
 * rewrite Host; a page on another origin cannot set that header without a CORS preflight, which
 * the admin API never grants.
 */
export function sameSite(origin: string, c: Context): boolean {
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    return false; // "null" (a sandboxed frame, a file:// page) or garbage
  }
  if (host === '') return false;
  const forwarded = c.req.header('x-forwarded-host')?.split(',')[0]?.trim();
  return [new URL(c.req.url).host, c.req.header('host'), forwarded].some((h) => h !== undefined && h.toLowerCase() === host.toLowerCase());
}

export function adminRoutes(s: Services, deps: HttpDeps): Hono<Env> {
  const r = new Hono<Env>();

  // Only the admin paths: the messenger routes share the /v1 prefix.
  r.use('/contacts', auth).use('/contacts/*', auth).use('/imports/*', auth).use('/merges', auth).use('/merges/*', auth)
    .use('/conversations', auth).use('/conversations/*', auth).use('/webhooks', auth).use('/webhooks/*', auth).use('/exports/*', auth);

  async function auth(c: Context<Env>, next: Next) {
    // `/contacts/*` also matches `/contacts`: authenticate (and count against the token's limit) once.
    if (c.get('app') !== undefined) return next();
    const origin = c.req.header('origin');
    if (origin !== undefined && !sameSite(origin, c)) {
      throw new ServiceError(403, 'cross-origin-admin', 'the admin API does not answer browsers on other origins');
    }
    const auth = c.req.header('authorization') ?? '';
    const token = /^Bearer\s+(\S+)$/i.exec(auth)?.[1];
    if (!token) throw new ServiceError(401, 'missing-token', 'send Authorization: Bearer <admin token>');
    const app = await findAppByToken(s.db, token);
    if (!app) throw new ServiceError(401, 'bad-token', 'the admin token is not valid');
    deps.limiter.hit(`t:${app.id}`, deps.limiter.limits.perToken);
    c.set('app', app);
    await next();
  }

  r.post('/contacts', async (c) => {
    const input = schemas.parseInput(schemas.newContact, await readJson(c, true));
    const identity = schemas.identityOf(input.user_id, input.email);
    return c.json(await admin.createContact(s, c.get('app'), { role: input.role, identity, name: input.name, attributes: input.attributes }), 201);
  });

  r.get('/contacts', async (c) => {
    const q = schemas.parseInput(schemas.contactsQuery, c.req.query());
    return c.json(await admin.listContactsPage(s, c.get('app'), {
      limit: q.limit, cursor: q.cursor, role: q.role, user_id: q.user_id, email: q.email === undefined ? undefined : normaliseEmail(q.email), order: q.order,
    }));
  });

  // Static paths before /contacts/:id.
  r.post('/contacts/merge', async (c) => {
    const input = schemas.parseInput(schemas.merge, await readJson(c, true));
    return c.json(await admin.explicitMerge(s, c.get('app'), input.from, input.into));
  });

  r.get('/contacts/:id', async (c) => c.json(await admin.contactDetail(s, c.get('app'), c.req.param('id'))));

  r.post('/contacts/:id/convert', async (c) => {
    const input = schemas.parseInput(schemas.convert, await readJson(c, true));
    return c.json(await admin.convertLead(s, c.get('app'), c.req.param('id'), schemas.identityOf(input.user_id, input.email)));
  });

  r.post('/imports/users', async (c) => {
    const body = c.req.raw.body;
    if (!body) throw new ServiceError(400, 'invalid-csv', 'send the CSV file as the body');
    try {
      return c.json(await importUsers(s, c.get('app'), body));
    } catch (error) {
      if (error instanceof ImportError) throw new ServiceError(400, 'invalid-csv', error.message);
      // Any parser error is the file's fault (csv-parse's codes do not all start with CSV_, e.g. INVALID_OPENING_QUOTE).
      if (error instanceof CsvError) throw new ServiceError(400, 'invalid-csv', error.message);
      throw error;
    }
  });

  r.post('/merges/bulk', async (c) => {
    const input = schemas.parseInput(schemas.bulk, await readJson(c, true));
    return c.json(await bulkMerge(s, c.get('app'), input));
  });

  r.get('/merges', async (c) => {
    const q = schemas.parseInput(schemas.mergesQuery, c.req.query());
    return c.json(await admin.listMerges(s, c.get('app'), q));
  });

  r.get('/conversations', async (c) => {
    const q = schemas.parseInput(schemas.conversationsQuery, c.req.query());
    return c.json(await admin.conversationsOfContact(s, c.get('app'), q));
  });

  r.get('/conversations/:id/messages', async (c) => {
    const q = schemas.parseInput(schemas.conversationMessagesQuery, c.req.query());
    return c.json(await admin.conversationMessages(s, c.get('app'), c.req.param('id'), { limit: q.limit, cursor: q.cursor }));
  });

  r.post('/conversations/:id/reply', async (c) => {
    const input = schemas.parseInput(schemas.reply, await readJson(c, true));
    return c.json(await admin.reply(s, c.get('app'), c.req.param('id'), input.body, `agent_${c.get('app').id}`), 201);
  });

  r.get('/exports/contacts.csv', (c) => contactsCsvResponse(s, c.get('app')));

  r.post('/webhooks', async (c) => {
    const input = schemas.parseInput(schemas.webhook, await readJson(c, true));
    return c.json(await webhooks.registerWebhook(s, c.get('app'), input.url, input.events), 201);
  });
  r.get('/webhooks', async (c) => c.json(await webhooks.listWebhooks(s, c.get('app'))));
  r.delete('/webhooks/:id', async (c) => {
    await webhooks.deleteWebhook(s, c.get('app'), c.req.param('id'));
    return c.body(null, 204);
  });
  r.get('/webhooks/:id/deliveries', async (c) => {
    const q = schemas.parseInput(schemas.listQuery, c.req.query());
    return c.json(await webhooks.webhookDeliveries(s, c.get('app'), c.req.param('id'), q.limit));
  });

  return r;
}
