/**
 * Identity values as the rules see them: junk detection, email normalisation, and the
 * identity a host site claims for a logged-in person. Pure: no I/O.
 */

/** Values that sloppy host integrations send instead of "no identity" (spec: refused with 400). */
const JUNK_VALUES = new Set(['null', 'undefined', 'anonymous', 'guest', '0', 'nan', 'none', '[object object]']);

// Deliberately simple: one @, no spaces, a dot in the domain. Stricter checks reject real addresses.
const EMAIL_PATTERN = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export function isJunkIdentityValue(value: string): boolean {
  const v = value.trim().toLowerCase();
  return v === '' || JUNK_VALUES.has(v);
}

export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}

export function isValidEmail(email: string): boolean {
  const e = email.trim();
  return e.length <= 254 && EMAIL_PATTERN.test(e);
}

/** A claimed identity: at least one of the two is present. */
export interface Identity {
  user_id: string | null;
  email: string | null;
}

export type IdentityCheck = { ok: true; identity: Identity | null } | { ok: false; reason: string };

/**
 * Checks a `user_id`/`email` pair as received. `undefined` means "not given"; any given value must be
 * a real identity (not junk, email well-formed).
 */
export function checkIdentity(user_id: string | undefined | null, email: string | undefined | null): IdentityCheck {
  if (user_id != null && isJunkIdentityValue(user_id)) return { ok: false, reason: `user_id "${user_id}" is not a real identity` };
  if (email != null && isJunkIdentityValue(email)) return { ok: false, reason: 'email is not a real identity' };
  if (email != null && !isValidEmail(email)) return { ok: false, reason: 'email is malformed' };
  if (user_id == null && email == null) return { ok: true, identity: null };
  return { ok: true, identity: { user_id: user_id ?? null, email: email == null ? null : email.trim() } };
}
