/**
 * A seeded generator of malformed requests for every endpoint, and the loop that sends them to the
 * app's own fetch handler: wrong types, huge strings, deep JSON, bad UTF-8, junk identities, wrong
 * content types, bad query strings and paths, unknown ids, bad credentials. It records every 5xx,
 * every thrown error, and every rejected (4xx) request after which the rows differ.
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { App } from '../../server-stub/storage/apps.ts';
import { BASE, userHash, type TestServer } from './server-app.ts';
import { dbFingerprint } from './db-fingerprint.ts';
import { createRng, type Rng } from './prng.ts';

export type FuzzPart = 'messenger' | 'admin';

let secure: App;
let open: App;
const known = { visitors: [] as string[], contacts: [] as string[], conversations: [] as string[], messages: [] as string[] };

async function json(t: TestServer, method: string, path: string, body: unknown, token?: string, origin?: string) {
  const res = await t.call(method, path, body, { ...(token ? { token } : {}), ...(origin ? { headers: { origin } } : {}) });
  if (res.status >= 300) throw new Error(`fuzz set-up: ${method} ${path} answered ${res.status}`);
  return res.body;
}

/** Two apps (one requiring verification and allowing one origin) with users, leads, conversations and a merge. */
export async function seedFuzzTarget(t: TestServer): Promise<void> {
  secure = await t.createApp({ require_verification: true, allowed_origins: ['https://shop.example'] });
  open = await t.createApp();
  for (const app of [secure, open]) {
    const user = await json(t, 'POST', '/v1/contacts', { role: 'user', user_id: `u-${app.id}`, email: `user@${app.id}.example` }, app.admin_token);
    const apiLead = await json(t, 'POST', '/v1/contacts', { role: 'lead', email: `api@${app.id}.example` }, app.admin_token);
    known.contacts.push(user.id, apiLead.id);
    for (let i = 0; i < 3; i++) {
      const visitorId = randomUUID();
      const started = await json(t, 'POST', '/v1/messenger/conversations', { app_id: app.id, visitor_id: visitorId, body: `hello ${i}`, client_id: randomUUID() }, undefined, 'https://shop.example');
      known.visitors.push(visitorId);
      known.contacts.push(started.contact.id);
      known.conversations.push(started.conversation.id);
      known.messages.push(started.message.id);
    }
    await json(t, 'POST', '/v1/contacts/merge', { from: known.contacts.at(-1), into: user.id }, app.admin_token);
  }
}

// ---- generated values ------------------------------------------------------------------------

const JUNK_IDENTITIES = ['', ' ', 'null', 'NULL', 'undefined', 'anonymous', 'Guest', '0', 'NaN', 'none', '[object Object]', ' null '];

function deepJson(rng: Rng): string {
  const depth = rng.pick([64, 1000, 5000]);
  return rng.chance(0.5) ? `${'['.repeat(depth)}${']'.repeat(depth)}` : `${'{"a":'.repeat(Math.min(depth, 12_000))}1${'}'.repeat(Math.min(depth, 12_000))}`;
}

/** A JSON value of the wrong kind, or a string nobody should send. */
function junkValue(rng: Rng): unknown {
  switch (rng.int(0, 17)) {
    case 0: return null;
    case 1: return rng.pick([0, -1, 1e308, -0, 3.5, Number.MAX_SAFE_INTEGER + 2]);
    case 2: return rng.chance(0.5);
    case 3: return [];
    case 4: return { $gt: '' };
    case 5: return ['a', 1, null];
    case 6: return 'x'.repeat(rng.pick([129, 256, 2001, 10_001]));
    case 7: return rng.pick(JUNK_IDENTITIES);
    case 8: return "' OR 1=1 --";
    case 9: return '../../../etc/passwd';
    case 10: return '\u0000\u0001\u001f';
    case 11: return '🐍'.repeat(rng.int(1, 3000));
    case 12: return { __proto__: { polluted: true }, constructor: { prototype: { polluted: true } } };
    case 13: return '<script>alert(1)</script>';
    case 14: return 'not-an-email@';
    case 15: return '2026-13-45T99:99:99Z';
    case 16: return { user_id: 'u', user_hash: 'ab'.repeat(32) };
    default: return randomish(rng);
  }
}

function randomish(rng: Rng): string {
  const alphabet = 'aZ09_-.@%+/\\"\'{}[]<>:;, \t\n\u00e9\u4e2d\u{1F40D}';
  const chars = [...alphabet];
  return Array.from({ length: rng.int(0, 40) }, () => rng.pick(chars)).join('');
}

function idLike(rng: Rng): string {
  const pool = [...known.contacts, ...known.conversations, ...known.messages];
  switch (rng.int(0, 9)) {
    case 0: return rng.pick(pool);
    case 1: return `${rng.pick(pool)}x`;
    case 2: return `cnt_${randomUUID()}`;
    case 3: return encodeURIComponent(randomish(rng)) || 'x';
    case 4: return 'x'.repeat(rng.pick([65, 129, 3000]));
    case 5: return rng.pick(['%00', '%ff', '%E0%A4%A', '%', '%zz', '..%2f..%2fetc', '%2e%2e', 'null', 'undefined', '0', '-1']);
    case 6: return rng.pick(['__proto__', 'constructor', 'toString', 'hasOwnProperty']);
    case 7: return encodeURIComponent('🐍\u0000');
    default: return rng.pick(pool);
  }
}

// ---- endpoints ---------------------------------------------------------------------------------

interface Base {
  name: string;
  method: string;
  path: string;
  body?: Record<string, unknown> | string;
  query?: Record<string, string>;
  admin: boolean;
  csv?: boolean;
}

function baseRequest(rng: Rng, part: FuzzPart): Base {
  const app = rng.pick([secure, open]);
  const visitor = rng.chance(0.7) ? rng.pick(known.visitors) : randomUUID();
  const conv = rng.chance(0.7) ? rng.pick(known.conversations) : idLike(rng);
  const id = rng.chance(0.6) ? rng.pick(known.contacts) : idLike(rng);
  const signed = (v: string) => ({ user_id: v, user_hash: userHash(app.identity_secret, v) });
  const vq = { app_id: app.id, visitor_id: visitor };
  const specs: Base[] = [
    { name: 'ping', method: 'POST', path: '/v1/messenger/ping', admin: false, body: { ...vq, user: rng.chance(0.5) ? signed('u-fuzz') : undefined, lead: { email: 'lead@example.com', name: 'L' }, attributes: { plan: 'pro' } } },
    { name: 'start', method: 'POST', path: '/v1/messenger/conversations', admin: false, body: { ...vq, body: 'hello', client_id: randomUUID() } },
    { name: 'list', method: 'GET', path: '/v1/messenger/conversations', admin: false, query: vq },
    { name: 'send', method: 'POST', path: `/v1/messenger/conversations/${conv}/messages`, admin: false, body: { ...vq, body: 'more', client_id: randomUUID() } },
    { name: 'messages', method: 'GET', path: `/v1/messenger/conversations/${conv}/messages`, admin: false, query: { ...vq, after: rng.pick(known.messages) } },
    { name: 'read', method: 'POST', path: `/v1/messenger/conversations/${conv}/read`, admin: false, body: vq },
    { name: 'event', method: 'POST', path: '/v1/messenger/events', admin: false, body: { ...vq, name: 'clicked', metadata: { a: 1 }, occurred_at: '2026-01-01T00:00:00Z' } },
    { name: 'logout', method: 'POST', path: '/v1/messenger/logout', admin: false, body: vq },
    { name: 'stream', method: 'GET', path: '/v1/messenger/stream', admin: false, query: vq },
    { name: 'create contact', method: 'POST', path: '/v1/contacts', admin: true, body: { role: rng.pick(['lead', 'user']), user_id: `u-${rng.int(0, 50)}`, email: `c${rng.int(0, 50)}@example.com`, name: 'N', attributes: { a: 'b' } } },
    { name: 'list contacts', method: 'GET', path: '/v1/contacts', admin: true, query: { email: 'user@example.com', user_id: 'u1', role: 'user', limit: '10', cursor: id } },
    { name: 'contact', method: 'GET', path: `/v1/contacts/${id}`, admin: true },
    { name: 'convert', method: 'POST', path: `/v1/contacts/${id}/convert`, admin: true, body: { user_id: `conv-${rng.int(0, 50)}`, email: 'conv@example.com' } },
    { name: 'merge', method: 'POST', path: '/v1/contacts/merge', admin: true, body: { from: id, into: rng.pick(known.contacts) } },
    { name: 'import', method: 'POST', path: '/v1/imports/users', admin: true, csv: true, body: csvBody(rng) },
    { name: 'bulk', method: 'POST', path: '/v1/merges/bulk', admin: true, body: { dry_run: true, include_api_leads: rng.chance(0.5) } },
    { name: 'merges', method: 'GET', path: '/v1/merges', admin: true, query: { contact_id: id, limit: '5', cursor: idLike(rng) } },
    { name: 'conversations', method: 'GET', path: '/v1/conversations', admin: true, query: { contact_id: id } },
    { name: 'conversation messages', method: 'GET', path: `/v1/conversations/${conv}/messages`, admin: true },
    { name: 'reply', method: 'POST', path: `/v1/conversations/${conv}/reply`, admin: true, body: { body: 'agent answer' } },
    { name: 'export', method: 'GET', path: '/v1/exports/contacts.csv', admin: true },
    { name: 'health', method: 'GET', path: '/healthz', admin: false },
    { name: 'unknown', method: rng.pick(['GET', 'POST', 'PUT', 'DELETE', 'PATCH']), path: rng.pick(['/', '/v1', '/v1/', '/v1/messenger', '/v1/nope', '/v2/contacts', '/v1/contacts/a/b/c', '/v1/webhooks/x']), admin: rng.chance(0.5) },
  ];
  const spec = rng.pick(specs.filter((s) => (part === 'admin') === s.admin));
  return { ...spec, ...(spec.admin ? { app } : {}), name: spec.name, path: spec.path } as Base & { app?: App };
}

function csvBody(rng: Rng): string {
  return rng.pick([
    'user_id,email,name\nfz1,fz1@example.com,F\n',
    'email\n"unterminated@example.com\n',
    'name,plan\nno identity column,pro\n',
    'user_id,user_id\nx,y\n',
    '',
    '\uFEFFuser_id,email\nnull,guest@example.com\n',
    `user_id,email\n${'a,'.repeat(500)}\n`,
    'user_id,email\nfz2,not-an-email\nfz2,fz2@example.com\n',
    '\u0000\u0001binary\u00ff',
  ]);
}

// ---- mutations ---------------------------------------------------------------------------------

const IDENTITY_BEARING = new Set(['ping', 'start', 'send', 'event', 'create contact', 'convert']);

/** The mutations that, applied to this request, make it malformed on their own. */
function breakingKinds(base: Base): number[] {
  const kinds: number[] = [];
  const jsonBody = base.body !== undefined && !base.csv;
  if (jsonBody) kinds.push(0, 1, 2, 3, 4, 5);
  if (base.csv) kinds.push(3, 4);
  if (!jsonBody && base.query) kinds.push(1, 2, 9);
  if (IDENTITY_BEARING.has(base.name)) kinds.push(8);
  if (base.admin) kinds.push(7);
  if (/\/(contacts|conversations)\/(?!merge$)[^/]+/.test(base.path)) kinds.push(10);
  if (kinds.length === 0) kinds.push(11);
  return kinds;
}

interface Built {
  label: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string | Uint8Array | null;
}

function mutate(rng: Rng, base: Base & { app?: App }, tokenOf: (b: Base & { app?: App }) => string): Built {
  let method = base.method;
  let path = base.path;
  const query = { ...(base.query ?? {}) };
  const headers: Record<string, string> = {};
  let body: Record<string, unknown> | string | Uint8Array | null | undefined = base.body === undefined ? undefined : typeof base.body === 'string' ? base.body : structuredClone(base.body);
  if (base.admin) headers['authorization'] = `Bearer ${tokenOf(base)}`;
  if (body !== undefined) headers['content-type'] = base.csv ? 'text/csv' : 'application/json';
  const labels: string[] = [];
  const count = rng.int(1, 3);
  for (let i = 0; i < count; i++) {
    // The first mutation always breaks the request; later ones may be harmless on their own.
    const kind = i === 0 ? rng.pick(breakingKinds(base)) : rng.int(0, 13);
    labels.push(String(kind));
    switch (kind) {
      case 0: // a field of the wrong type or a junk value
      case 1: {
        if (body && typeof body === 'object' && !(body instanceof Uint8Array)) {
          const keys = [...Object.keys(body), 'user', 'lead', 'attributes', 'metadata'];
          const key = rng.pick(keys);
          if (rng.chance(0.3) && key === 'user') body[key] = { user_id: junkValue(rng), email: junkValue(rng), user_hash: junkValue(rng) };
          else body[key] = junkValue(rng);
        } else {
          const keys = Object.keys(query);
          query[keys.length > 0 && rng.chance(0.8) ? rng.pick(keys) : rng.pick(['app_id', 'visitor_id', 'limit', 'cursor', 'after', 'role', 'email', 'contact_id'])] = String(junkValue(rng)).slice(0, 5000);
        }
        break;
      }
      case 2: // a required field missing
        if (body && typeof body === 'object' && !(body instanceof Uint8Array)) delete body[rng.pick(Object.keys(body).concat('x'))];
        else delete query[rng.pick(Object.keys(query).concat('x'))];
        break;
      case 3: // a body that is not JSON, not an object, or not UTF-8
        body = rng.pick<string | Uint8Array>(['{', '{"a":', 'nul', '{"a":1}}', '[]', '"str"', '42', 'null', 'true', '\uFEFF{}', "{'single':1}", '{"a":NaN}',
          new Uint8Array([0x7b, 0x22, 0x62, 0x6f, 0x64, 0x79, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d]), new Uint8Array([0xff, 0xfe, 0x7b, 0x7d]), new Uint8Array([0xed, 0xa0, 0x80])]);
        break;
      case 4: // deep nesting
        body = rng.chance(0.5) ? deepJson(rng) : `{"app_id":"x","visitor_id":"abcdefgh","attributes":{"a":${deepJson(rng)}}}`;
        break;
      case 5: // over the size limit
        body = JSON.stringify({ ...(typeof base.body === 'object' ? base.body : {}), pad: 'x'.repeat(64 * 1024 + 1) });
        break;
      case 6: // wrong content type
        headers['content-type'] = rng.pick(['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonx', 'application/xml', '']);
        if (headers['content-type'] === '') delete headers['content-type'];
        break;
      case 7: // bad credentials
        headers['authorization'] = rng.pick(['', 'Bearer', 'Bearer ', 'Basic dXNlcjpwYXNz', `Bearer ${tokenOf(base)}x`, 'Bearer pat_' + 'a'.repeat(5000), `Token ${tokenOf(base)}`, `Bearer ${tokenOf(base)} extra`]);
        break;
      case 8: // junk identities in every identity field
        if (body && typeof body === 'object' && !(body instanceof Uint8Array)) {
          body['user'] = { user_id: rng.pick(JUNK_IDENTITIES), email: rng.chance(0.5) ? rng.pick(JUNK_IDENTITIES) : undefined };
          if ('user_id' in body || 'role' in body) body['user_id'] = rng.pick(JUNK_IDENTITIES);
          if ('email' in body) body['email'] = rng.pick(JUNK_IDENTITIES);
        } else query['user_id'] = rng.pick(JUNK_IDENTITIES);
        break;
      case 9: // bad query parameters
        for (const k of ['limit', 'cursor', 'after', 'role', 'email', 'contact_id', 'app_id', 'visitor_id']) {
          if (rng.chance(0.3)) query[k] = rng.pick(['-1', '0', '1001', 'abc', '1e3', '1.5', '', '9'.repeat(400), '%', '%zz', '%E0%A4%A', 'admin', '[]', 'a&b=c']);
        }
        break;
      case 10: // unknown or odd ids in the path
        path = path.replace(/(contacts|conversations)\/[^/]+/, (_m, p: string) => `${p}/${idLike(rng)}`);
        break;
      case 11: // another method
        method = rng.pick(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS']);
        break;
      case 12: // origin games
        headers['origin'] = rng.pick(['https://evil.example', 'null', 'https://shop.example', 'http://parley.test', 'file://', '*']);
        break;
      default: // unknown fields and prototype keys
        if (body && typeof body === 'object' && !(body instanceof Uint8Array)) body = `{"__proto__":{"polluted":1},"constructor":{"prototype":{"x":1}},${JSON.stringify(body).slice(1)}`;
        else query['__proto__'] = 'x';
        break;
    }
  }
  if (method === 'GET' || method === 'HEAD') body = undefined;
  const qs = Object.entries(query).map(([k, v]) => `${encodeURIComponent(k)}=${/%/.test(v) && rng.chance(0.5) ? v : encodeURIComponent(v)}`).join('&');
  const encoded = body === undefined || body === null ? null : typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body);
  return { label: `${base.name} [${labels.join(',')}]`, method, url: `${BASE}${path}${qs ? `?${qs}` : ''}`, headers, body: encoded };
}

// ---- the run -----------------------------------------------------------------------------------

export interface FuzzResult {
  sent: number;
  rejected: number;
  statuses: Record<number, number>;
  /** 5xx answers, thrown errors, and rejected requests after which the rows differ. */
  failures: string[];
  /** Rejected requests that ran statements (rolled back) and were re-checked by a full fingerprint. */
  rechecked: number;
}

/**
 * Sends generated requests for one part of the API until `rejectedWanted` were refused (4xx), at
 * most 1.25 times that many in all. Every request is checked: on SQLite by the connection's change
 * counter (a full fingerprint when it moved), elsewhere by a fingerprint every 25 requests.
 */
export async function runFuzz(t: TestServer, options: { seed: number; part: FuzzPart; rejectedWanted: number }): Promise<FuzzResult> {
  const rng = createRng(options.seed);
  const db = t.parley.services.db;
  const sqlite = t.parley.services.dialect === 'sqlite';
  const totalChanges = async () => Number((await sql<{ n: number }>`select total_changes() as n`.execute(db)).rows[0]!.n);
  const tokenOf = (b: { app?: App }) => (b.app ?? secure).admin_token;
  const statuses: Record<number, number> = {};
  const failures: string[] = [];
  let fingerprint = await dbFingerprint(db);
  let fingerprintAt = sqlite ? await totalChanges() : 0;
  let rechecked = 0;
  let rejected = 0;
  let sent = 0;
  const max = Math.ceil(options.rejectedWanted * 1.25);
  for (let i = 0; i < max && rejected < options.rejectedWanted && failures.length <= 20; i++) {
    sent++;
    const built = mutate(rng, baseRequest(rng, options.part), tokenOf);
    const changesBefore = sqlite ? await totalChanges() : 0;
    if (sqlite && changesBefore !== fingerprintAt) {
      fingerprint = await dbFingerprint(db);
      fingerprintAt = changesBefore;
    }
    if (!sqlite && i % 25 === 0) fingerprint = await dbFingerprint(db);
    const what = `#${i} ${built.label} ${built.method} ${built.url.slice(0, 200)}`;
    let res: Response;
    try {
      res = await t.parley.app.fetch(new Request(built.url, { method: built.method, headers: built.headers, body: built.body as BodyInit | null }));
    } catch (error) {
      failures.push(`${what}: threw ${String(error)}`);
      continue;
    }
    if (res.headers.get('content-type')?.includes('text/event-stream')) await res.body?.cancel();
    else await res.arrayBuffer();
    statuses[res.status] = (statuses[res.status] ?? 0) + 1;
    if (res.status >= 500) failures.push(`${what}: ${res.status}`);
    if (res.status >= 400) {
      rejected++;
      if (sqlite ? (await totalChanges()) !== changesBefore : i % 25 === 0) {
        rechecked++;
        if ((await dbFingerprint(db)) !== fingerprint) failures.push(`${what}: ${res.status} but rows changed`);
      }
    }
  }
  return { sent, rejected, statuses, failures, rechecked };
}
