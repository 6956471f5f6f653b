import Cookies from 'js-cookie';

/** Cookie name for an app's visitor id: one visitor per app on a site. */
export const cookieName = (appId: string): string => 'parley_vid_' + appId.replace(/[^\w-]/g, '_');

const VALID = /^[\w-]{16,64}$/;

/** The visitor identity: an opaque random id kept in a first-party cookie. */
export interface Identity {
  /** The current visitor id, creating it (and the cookie) if there is none. */
  get(): string;
  /**
   * Re-reads the cookie, creates the id if missing, and refreshes the cookie's lifetime. A cookie
   * this tab had stored and that is now gone was deleted by a logout elsewhere (rule R15): it is
   * not written back; `gone` is called and the id is returned one last time. A cookie replaced by
   * another id (a logout, then a new visitor, in a tab of another subdomain) is adopted unless
   * `gone` says this tab stops: then the old id is returned one last time.
   */
  touch(): string;
  /** Forgets the current id and makes a new one (rule R8). */
  rotate(): string;
  /** Deletes the cookie (with `others`, only if it still holds this id) and forgets the id (rule R15). */
  clear(others?: boolean): void;
  /** False when the browser refused the cookie: the id then lives only in memory. */
  persistent(): boolean;
}

export interface IdentityOptions {
  appId: string;
  domain?: string | undefined;
  secure: boolean;
  newId: () => string;
  /** Cookie lifetime in days (about nine months). */
  days?: number;
  /**
   * The stored cookie was deleted (`next` undefined) or replaced by `next` outside this tab (a
   * logout in another tab, or by the site). For a replaced cookie, truthy means this tab stops.
   */
  gone?: (next?: string) => unknown;
}

export function createIdentity(o: IdentityOptions): Identity {
  const name = cookieName(o.appId);
  const scope = o.domain ? { path: '/', domain: o.domain } : { path: '/' };
  let id: string | undefined;
  let stored = false;
  const write = (v: string): string => {
    Cookies.set(name, v, { ...scope, expires: o.days ?? 270, sameSite: 'Lax', secure: o.secure });
    stored = Cookies.get(name) === v;
    return (id = v);
  };
  const read = (): string | undefined => {
    const c = Cookies.get(name);
    return c && VALID.test(c) ? c : undefined;
  };
  // `others`: leave a cookie that now holds another visitor (replaced by another tab or subdomain).
  const clear = (others?: boolean): void => {
    if (!others || read() === id) Cookies.remove(name, scope);
    id = undefined;
    stored = false;
  };
  return {
    get: () => id ?? write(read() ?? o.newId()),
    touch() {
      const c = read();
      const v = id;
      // Deleted: never written back. Replaced: `gone` decides (R15; `gone` may clear `id`).
      return (c ? v && c !== v && o.gone?.(c) : stored && (o.gone?.(), 1)) ? v! : write(c ?? v ?? o.newId());
    },
    rotate: () => {
      clear();
      return write(o.newId());
    },
    clear,
    persistent: () => stored,
  };
}
