import type {
  ApiError,
  Contact,
  ConversationSummary,
  Message,
  PingAnswer,
  Result,
  UserClaim,
} from './types.ts';

export interface PingBody {
  visitor_id: string;
  user?: UserClaim;
  lead?: { email?: string; name?: string };
  attributes?: Record<string, unknown>;
}

export interface StartAnswer {
  conversation: { id: string };
  message: Message;
  contact: Contact;
}

/** HTTP calls of the messenger contract (shared/spec/http-api.md), each returning a typed Result. */
export interface Api {
  ping(b: PingBody): Promise<Result<PingAnswer>>;
  start(b: { visitor_id: string; user?: UserClaim; body: string; client_id: string }): Promise<Result<StartAnswer>>;
  conversations(visitorId: string): Promise<Result<{ data: ConversationSummary[] }>>;
  send(conversationId: string, b: { visitor_id: string; body: string; client_id: string }): Promise<Result<Message>>;
  messages(conversationId: string, visitorId: string, after?: string): Promise<Result<{ data: Message[] }>>;
  read(conversationId: string, visitorId: string): Promise<Result<unknown>>;
  event(b: { visitor_id: string; name: string; metadata?: unknown; occurred_at: string }): Promise<Result<unknown>>;
  logout(visitorId: string): Promise<Result<unknown>>;
  streamUrl(visitorId: string): string;
}

const fail = (status: number, title: string, detail = '', type = 'about:blank'): { ok: false; error: ApiError } => ({
  ok: false,
  error: { status, type, title, detail },
});

export function createApi(fetchFn: typeof fetch, base: string, appId: string): Api {
  const root = base.replace(/\/+$/, '') + '/v1/messenger';
  const q = (o: Record<string, string | undefined>): string =>
    '?' + new URLSearchParams(Object.entries(o).filter((e): e is [string, string] => e[1] !== undefined)).toString();

  async function call<T>(method: string, path: string, body?: object, keepalive = false): Promise<Result<T>> {
    let res: Response;
    try {
      res = await fetchFn(root + path, {
        method,
        keepalive,
        ...(body ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ app_id: appId, ...body }) } : {}),
      });
    } catch (e) {
      return fail(0, 'Network error', String(e));
    }
    const text = await res.text().catch((e: unknown) => `(unreadable body: ${String(e)})`);
    let data: unknown = undefined;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (e) {
        return fail(res.status, 'Invalid JSON from server', String(e));
      }
    }
    if (res.ok) return { ok: true, value: data as T };
    const p = (data ?? {}) as Partial<ApiError>;
    return fail(res.status, p.title ?? res.statusText, p.detail ?? '', p.type ?? 'about:blank');
  }

  const id = (v: string) => encodeURIComponent(v);
  return {
    ping: (b) => call('POST', '/ping', b),
    start: (b) => call('POST', '/conversations', b),
    conversations: (v) => call('GET', '/conversations' + q({ app_id: appId, visitor_id: v })),
    send: (c, b) => call('POST', `/conversations/${id(c)}/messages`, b),
    messages: (c, v, after) => call('GET', `/conversations/${id(c)}/messages` + q({ app_id: appId, visitor_id: v, after })),
    read: (c, v) => call('POST', `/conversations/${id(c)}/read`, { visitor_id: v }),
    event: (b) => call('POST', '/events', b),
    logout: (v) => call('POST', '/logout', { visitor_id: v }, true),
    streamUrl: (v) => root + '/stream' + q({ app_id: appId, visitor_id: v }),
  };
}

/** True for a transient failure worth retrying later (network, 408, 429, 5xx). */
export const transient = (e: ApiError): boolean =>
  e.status === 0 || e.status === 408 || e.status === 429 || e.status >= 500;
