// An in-memory slice of the messenger contract (shared/spec/http-api.md) as msw handlers. The core
// flows also run against the real server app (real-server.test.ts); this fake stays for what the
// real app cannot be told to do on cue: planned network failures, lost answers, a pending merge.
import { http, HttpResponse, type JsonBodyType } from 'msw';

export const BASE = 'http://localhost:3000';
const M = `${BASE}/v1/messenger`;

export interface FakeContact {
  id: string;
  role: 'visitor' | 'lead' | 'user';
  user_id: string | null;
  email: string | null;
  name: string | null;
}
export interface FakeMessage {
  id: string;
  conversation_id: string;
  body: string;
  author: { type: 'contact' | 'agent'; id: string };
  created_at: string;
  client_id?: string;
}
interface FakeConversation {
  id: string;
  contact_id: string;
  messages: FakeMessage[];
  read_upto: number;
  start_client_id: string;
}

const problem = (status: number, type: string, title: string) =>
  HttpResponse.json({ type, title, status, detail: title }, { status, headers: { 'content-type': 'application/problem+json' } });

/** A fake Parley server for one app. Inspect `calls`, `contacts`, `conversations` in assertions. */
export function createFakeServer(appId = 'app_test') {
  let seq = 0;
  // Fixed width, so ids sort in creation order like the real server's (the widget sorts threads by id).
  const next = (p: string) => `${p}${String(++seq).padStart(6, '0')}`;
  const contacts = new Map<string, FakeContact>();
  const visitors = new Map<string, string>(); // visitor_id -> contact id
  const conversations = new Map<string, FakeConversation>();
  const calls: Array<{ method: string; path: string; query: Record<string, string>; body: any }> = [];
  const events: any[] = [];
  let clock = Date.parse('2026-01-01T10:00:00Z');
  const now = () => new Date((clock += 1000)).toISOString();
  /** Knobs a test can turn. */
  const opts = { mergePending: 0 };
  /** Planned failures by `METHOD /path-suffix`: a network error, or stored but the answer lost. */
  const failures = new Map<string, { mode: 'network' | 'lost'; times: number }>();

  const record = async (request: Request) => {
    const url = new URL(request.url);
    const body = request.method === 'GET' ? undefined : await request.clone().json().catch(() => undefined);
    calls.push({ method: request.method, path: url.pathname, query: Object.fromEntries(url.searchParams), body });
    return { url, body };
  };
  const contactOf = (visitorId: string): FakeContact | undefined => {
    const id = visitors.get(visitorId);
    return id ? contacts.get(id) : undefined;
  };
  const ensureVisitor = (visitorId: string): FakeContact => {
    let c = contactOf(visitorId);
    if (!c) {
      c = { id: next('c'), role: 'visitor', user_id: null, email: null, name: null };
      contacts.set(c.id, c);
      visitors.set(visitorId, c.id);
    }
    return c;
  };
  const unread = (c: FakeContact) =>
    [...conversations.values()]
      .filter((v) => v.contact_id === c.id)
      .reduce((n, v) => n + v.messages.slice(v.read_upto).filter((m) => m.author.type === 'agent').length, 0);
  const summary = (v: FakeConversation) => ({
    id: v.id,
    last_message: v.messages.at(-1) ?? null,
    unread_count: v.messages.slice(v.read_upto).filter((m) => m.author.type === 'agent').length,
    updated_at: v.messages.at(-1)?.created_at ?? '',
  });
  const own = (visitorId: string, convId: string) => {
    const c = contactOf(visitorId);
    const v = conversations.get(convId);
    return c && v && v.contact_id === c.id ? v : undefined;
  };
  const failure = (method: string, path: string, mode: 'network' | 'lost'): boolean => {
    for (const [k, v] of failures) {
      const [m, suffix] = k.split(' ');
      if (m === method && path.endsWith(suffix!) && v.mode === mode) {
        if (--v.times <= 0) failures.delete(k);
        return true;
      }
    }
    return false;
  };
  /** Answers, unless the answer is planned to get lost on the way back. */
  const answer = (method: string, path: string, json: JsonBodyType, status = 200) =>
    failure(method, path, 'lost') ? HttpResponse.error() : HttpResponse.json(json, { status });

  const handlers = [
    http.post(`${M}/ping`, async ({ request }) => {
      const { url, body } = await record(request);
      if (failure('POST', url.pathname, 'network')) return HttpResponse.error();
      if (body.app_id !== appId) return problem(404, 'https://parley.dev/problems/not-found', 'Unknown app');
      let c = ensureVisitor(body.visitor_id);
      let status: 'none' | 'pending' | 'done' = 'none';
      const u = body.user;
      if (u?.user_id || u?.email) {
        if (c.role === 'user' && (c.user_id ?? null) !== (u.user_id ?? null))
          return problem(409, 'https://parley.dev/problems/visitor-reset-required', 'Visitor reset required');
        if (c.role !== 'user') {
          let user = [...contacts.values()].find((x) => x.role === 'user' && x.user_id === (u.user_id ?? null));
          if (!user) {
            user = { id: next('u'), role: 'user', user_id: u.user_id ?? null, email: u.email ?? null, name: u.name ?? null };
            contacts.set(user.id, user);
          }
          const from = c;
          for (const v of conversations.values()) if (v.contact_id === from.id) v.contact_id = user.id;
          if (from.role !== 'visitor' || [...conversations.values()].some((v) => v.contact_id === user!.id)) status = 'done';
          visitors.set(body.visitor_id, user.id);
          contacts.delete(from.id);
          c = user;
          if (opts.mergePending > 0) {
            opts.mergePending--;
            status = 'pending';
          }
        }
      }
      if (body.lead?.email && c.role !== 'user') c.email = body.lead.email.trim().toLowerCase();
      return HttpResponse.json({ contact: c, merge: { status }, unread_count: unread(c) });
    }),
    http.post(`${M}/conversations`, async ({ request }) => {
      const { url, body } = await record(request);
      if (failure('POST', url.pathname, 'network')) return HttpResponse.error();
      const existing = [...conversations.values()].find((v) => v.start_client_id === body.client_id);
      let conv = existing;
      if (!conv) {
        const c = ensureVisitor(body.visitor_id);
        if (c.role === 'visitor') c.role = 'lead'; // R1
        conv = { id: next('conv'), contact_id: c.id, messages: [], read_upto: 0, start_client_id: body.client_id };
        conv.messages.push({
          id: next('m'),
          conversation_id: conv.id,
          body: body.body,
          author: { type: 'contact', id: c.id },
          created_at: now(),
          client_id: body.client_id,
        });
        conversations.set(conv.id, conv);
      }
      return answer(
        'POST',
        url.pathname,
        { conversation: { id: conv.id }, message: conv.messages[0]!, contact: contacts.get(conv.contact_id)! },
        201,
      );
    }),
    http.get(`${M}/conversations`, async ({ request }) => {
      const { url } = await record(request);
      const c = contactOf(url.searchParams.get('visitor_id') ?? '');
      const data = c ? [...conversations.values()].filter((v) => v.contact_id === c.id).map(summary) : [];
      if (failure('GET', url.pathname, 'network')) return HttpResponse.error();
      return answer('GET', url.pathname, { data });
    }),
    http.post(`${M}/conversations/:id/messages`, async ({ request, params }) => {
      const { url, body } = await record(request);
      if (failure('POST', url.pathname, 'network')) return HttpResponse.error();
      const v = own(body.visitor_id, String(params.id));
      if (!v) return problem(404, 'https://parley.dev/problems/not-found', 'Unknown conversation');
      let m = v.messages.find((x) => x.client_id === body.client_id);
      if (!m) {
        m = {
          id: next('m'),
          conversation_id: v.id,
          body: body.body,
          author: { type: 'contact', id: v.contact_id },
          created_at: now(),
          client_id: body.client_id,
        };
        v.messages.push(m);
      }
      return answer('POST', url.pathname, m, 201);
    }),
    http.get(`${M}/conversations/:id/messages`, async ({ request, params }) => {
      const { url } = await record(request);
      const v = own(url.searchParams.get('visitor_id') ?? '', String(params.id));
      if (!v) return problem(404, 'https://parley.dev/problems/not-found', 'Unknown conversation');
      const after = url.searchParams.get('after');
      const i = after ? v.messages.findIndex((m) => m.id === after) + 1 : 0;
      return answer('GET', url.pathname, { data: v.messages.slice(i) });
    }),
    http.post(`${M}/conversations/:id/read`, async ({ request, params }) => {
      const { body } = await record(request);
      const v = own(body.visitor_id, String(params.id));
      if (!v) return problem(404, 'https://parley.dev/problems/not-found', 'Unknown conversation');
      v.read_upto = v.messages.length;
      return new HttpResponse(null, { status: 204 });
    }),
    http.post(`${M}/events`, async ({ request }) => {
      const { body } = await record(request);
      events.push(body);
      return HttpResponse.json({}, { status: 202 });
    }),
    http.post(`${M}/logout`, async ({ request }) => {
      await record(request);
      return new HttpResponse(null, { status: 204 });
    }),
  ];

  return {
    handlers,
    calls,
    contacts,
    visitors,
    conversations,
    events,
    opts,
    /** Plans failures: `fail('POST /messages', 'lost')`; `times` defaults to 1, Infinity = until healed. */
    fail: (key: string, mode: 'network' | 'lost', times = 1) => void failures.set(key, { mode, times }),
    heal: (key: string) => void failures.delete(key),
    /** Calls of one kind, e.g. `callsTo('POST', '/ping')`. */
    callsTo: (method: string, suffix: string) => calls.filter((c) => c.method === method && c.path.endsWith(suffix)),
    /** An agent reply, as the admin API would store it. Returns the message. */
    reply(convId: string, body: string): FakeMessage {
      const v = conversations.get(convId)!;
      const m = { id: next('m'), conversation_id: convId, body, author: { type: 'agent' as const, id: 'agent_1' }, created_at: now() };
      v.messages.push(m);
      return m;
    },
    /** All messages stored with a client_id (exactly-once checks). */
    messagesWithClientId: (clientId: string) =>
      [...conversations.values()].flatMap((v) => v.messages).filter((m) => m.client_id === clientId),
  };
}

export type FakeServer = ReturnType<typeof createFakeServer>;
