import type { Api, PingBody } from './api.ts';
import type { Identity } from './identity.ts';
import type { Store } from './store.ts';
import type { Timers } from './stream.ts';
import type { ApiError, PingAnswer, Result, Settings, UpdateData, UserClaim } from './types.ts';

const KNOWN = new Set(['app_id', 'api_base', 'user_id', 'email', 'name', 'user_hash', 'cookie_domain', 'color']);
const RESET = /visitor-reset-required$/;

/** The host's identity claim: present only for a logged-in person (user_id and/or email). */
export function userClaim(s: Settings): UserClaim | undefined {
  if (!s.user_id && !s.email) return undefined;
  const u: UserClaim = {};
  for (const k of ['user_id', 'email', 'name', 'user_hash'] as const) if (typeof s[k] === 'string') u[k] = s[k];
  return u;
}

/** A value the server takes: null, a number, a boolean, or a string of at most 2,000 characters. */
const scalar = (v: unknown) =>
  v === null || ['number', 'boolean'].includes(typeof v) || (typeof v === 'string' && v.length <= 2000);

/**
 * Custom attributes: every setting that is not a known one, as far as the server takes them (one
 * refused attribute would fail every ping): scalar values, keys of 1 to 100 characters, at most
 * 100 attributes. `dropped` gets the keys of the others, quoted, if there are any.
 */
export function attributes(s: Settings, dropped?: (keys: string) => void): Record<string, unknown> | undefined {
  const a: Record<string, unknown> = {};
  const bad: string[] = [];
  let n = 0;
  for (const [k, v] of Object.entries(s))
    if (!KNOWN.has(k) && v !== undefined) n < 100 && k && k.length <= 100 && scalar(v) ? ((a[k] = v), n++) : bad.push(`"${k}"`);
  if (bad.length) dropped?.(bad.join(', '));
  return n ? a : undefined;
}

export interface SessionDeps {
  api: Api;
  identity: Identity;
  store: Store;
  timers: Timers;
  now(): number;
  throttleMs: number;
  report(e: ApiError): void;
  /** A developer mistake worth a console line, not a banner. */
  warn(e: ApiError): void;
  /** The visitor id was replaced (rule R8): drop what belonged to the old one. */
  onReset(visitorId: string): void;
  /** Identity or merge state changed: conversations may now be different. */
  onIdentity(): void;
}

/** Settings, pings (throttled), the R8 visitor reset and following a pending merge. */
export function createSession(d: SessionDeps, initial: Settings) {
  let settings = initial;
  let last = -Infinity;
  let timer: unknown;
  let mergeTries = 0;
  /** The identity seen by the last successful ping; a change means other conversations. */
  let seen: string | undefined;
  let stopped = false;
  /** The attributes last warned about: one console line, not one per ping. */
  let told = '';

  async function ping(extra: Pick<PingBody, 'lead'> = {}): Promise<Result<PingAnswer>> {
    const body = (): PingBody => ({
      visitor_id: d.identity.touch(),
      user: userClaim(settings),
      attributes: attributes(settings, (k) => {
        if (k !== told)
          d.warn({
            status: 0,
            type: 'about:blank',
            title: 'Attributes not sent',
            detail: `${k}: values must be null, numbers, booleans or strings of at most 2000 characters; keys at most 100 characters; at most 100 attributes`,
          });
        told = k;
      }),
      ...extra,
    });
    // Reading the cookie may find it deleted by a logout elsewhere, which shuts this widget down.
    const b = !stopped && body();
    if (!b || stopped) return { ok: false, error: { status: 0, type: 'about:blank', title: 'Parley was shut down', detail: '' } };
    last = d.now();
    d.timers.clearTimeout(timer);
    timer = undefined;
    let r = await d.api.ping(b);
    if (stopped) return r; // shut down while waiting: the answer belongs to a forgotten visitor
    if (!r.ok && r.error.status === 409 && RESET.test(r.error.type)) {
      seen = undefined;
      d.onReset(d.identity.rotate());
      r = await d.api.ping(body());
    }
    if (stopped) return r; // shut down while waiting: the answer belongs to a forgotten visitor
    if (!r.ok) {
      d.report(r.error);
      return r;
    }
    const { contact, merge, unread_count } = r.value;
    d.store.set({ contact, unread: unread_count });
    if (merge.status === 'pending' && mergeTries < 10) {
      // R5: the merge runs in the background; ask again shortly until it is done.
      timer = d.timers.setTimeout(() => void ping(), 300 * ++mergeTries);
    } else {
      const u = userClaim(settings);
      const key = `${u?.user_id}|${u?.email}`;
      if (mergeTries || key !== seen) d.onIdentity();
      mergeTries = 0;
      seen = key;
    }
    return r;
  }

  return {
    ping,
    settings: () => settings,
    user: () => userClaim(settings),
    /** Merges new data into the settings; pings at once when the identity changed, else throttled. */
    update(data: UpdateData): Promise<Result<PingAnswer>> | undefined {
      const before = userClaim(settings);
      settings = { ...settings, ...data };
      const after = userClaim(settings);
      if (before?.user_id !== after?.user_id || before?.email !== after?.email) return ping();
      schedule();
      return undefined;
    },
    /** A throttled ping: at most one per `throttleMs`, the last request winning. */
    schedule,
    /** For good (shutdown): no more pings, late answers ignored. */
    stop(): void {
      stopped = true;
      d.timers.clearTimeout(timer);
    },
  };

  function schedule(): void {
    const wait = last + d.throttleMs - d.now();
    if (wait <= 0) void ping();
    else timer ??= d.timers.setTimeout(() => void ping(), wait);
  }
}

export type Session = ReturnType<typeof createSession>;
