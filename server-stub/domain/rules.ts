/**
 * The identity and merge rules of ../shared/spec/identity-and-merge.md as pure decisions:
 * plain data in, a decision out. Storage and HTTP call these; these call nothing.
 */
import type { Identity } from './identity.ts';
import { normaliseEmail } from './identity.ts';

export type Role = 'visitor' | 'lead' | 'user';
export type CreatedVia = 'messenger' | 'api' | 'csv';
export type MergeTrigger = 'cookie' | 'email' | 'csv' | 'convert' | 'explicit' | 'bulk';

/** The part of a contact the rules look at. */
export interface ContactFacts {
  id: string;
  role: Role;
  created_via: CreatedVia;
  user_id: string | null;
  email_norm: string | null;
  merged_into: string | null;
  /** Pending mark (R2, R3): the user this contact is to be merged into. */
  merge_into_id: string | null;
  merge_trigger: MergeTrigger | null;
}

/** R7: only messenger-created visitors and leads are ever merged without an operator asking. */
export function isAutoMergeable(c: ContactFacts): boolean {
  return (c.role === 'visitor' || c.role === 'lead') && c.created_via === 'messenger' && c.merged_into === null;
}

export type UserMatch<C extends ContactFacts = ContactFacts> = { user: C; adoptUserId: boolean } | null;

/**
 * Which existing user an identity names. `candidates` are the live users whose user_id equals the
 * identity's user_id or whose email equals its email.
 * - A user_id names the user with that user_id.
 * - Failing that, an email names the user with that email and no user_id (unique, spec), who then
 *   adopts the user_id if one was given; with no user_id given, a sole user with that email will do.
 */
export function matchUser<C extends ContactFacts>(identity: Identity, candidates: readonly C[]): UserMatch<C> {
  const users = candidates.filter((c) => c.role === 'user' && c.merged_into === null);
  if (identity.user_id !== null) {
    const byId = users.find((u) => u.user_id === identity.user_id);
    if (byId) return { user: byId, adoptUserId: false };
  }
  if (identity.email === null) return null;
  const email = normaliseEmail(identity.email);
  const sameEmail = users.filter((u) => u.email_norm === email);
  const withoutId = sameEmail.find((u) => u.user_id === null);
  if (withoutId) return { user: withoutId, adoptUserId: identity.user_id !== null };
  if (identity.user_id === null && sameEmail.length === 1) return { user: sameEmail[0]!, adoptUserId: false };
  return null;
}

/** True when `user` is the person `identity` names (used to tell R8's "another identity"). */
export function identityNames(identity: Identity, user: ContactFacts): boolean {
  if (identity.user_id !== null) {
    if (user.user_id !== null) return user.user_id === identity.user_id;
    return identity.email !== null && user.email_norm === normaliseEmail(identity.email);
  }
  return identity.email !== null && user.email_norm === normaliseEmail(identity.email);
}

export type LoginDecision =
  /** R2, cookie with no contact yet: bind the cookie straight to the user. */
  | { kind: 'bind' }
  /** R2: the cookie's visitor/lead is to be merged into the user. */
  | { kind: 'mark'; from: string }
  /** The cookie already belongs to this very user. */
  | { kind: 'same' }
  /** R8 (and R7 for an API lead's cookie): the widget must start a fresh visitor; nothing is written. */
  | { kind: 'reset'; reason: string };

/**
 * What a ping carrying an identity does with the visitor cookie's contact (R2, R7, R8).
 * `current` is the live contact the cookie resolves to (after following merges), or null.
 * `target` is the existing user the identity names, or null when it will be created.
 */
export function decideLogin(identity: Identity, current: ContactFacts | null, target: ContactFacts | null): LoginDecision {
  if (current === null) return { kind: 'bind' };
  if (current.role === 'user') {
    if (target !== null ? target.id === current.id : identityNames(identity, current)) return { kind: 'same' };
    return { kind: 'reset', reason: 'this visitor cookie belongs to another user' };
  }
  if (!isAutoMergeable(current)) return { kind: 'reset', reason: 'this visitor cookie belongs to a contact that is not merged automatically' };
  if (current.merge_trigger === 'cookie' && current.merge_into_id !== null && current.merge_into_id !== target?.id) {
    // Another user already logged in with this cookie: it is theirs (R8).
    return { kind: 'reset', reason: 'this visitor cookie belongs to another user' };
  }
  return { kind: 'mark', from: current.id };
}

/** R3: the user a lead's email matches, or null when no user or several users have it. */
export function emailMatch<C extends ContactFacts>(usersWithEmail: readonly C[]): C | null {
  const live = usersWithEmail.filter((u) => u.role === 'user' && u.merged_into === null);
  return live.length === 1 ? live[0]! : null;
}

/**
 * R3: whether a lead's email mark still names the one user with its email. Such a mark is only as
 * good as the match that made it: once a second user has the email (or the user lost it), the
 * lead is ambiguous, as a bulk merge would report it, and must not merge. Cookie marks (R2) rest
 * on the login itself and always hold.
 */
export function markHolds(lead: ContactFacts, usersWithLeadEmail: readonly ContactFacts[]): boolean {
  if (lead.merge_into_id === null || lead.merge_trigger === null) return false;
  if (lead.merge_trigger !== 'email' && lead.merge_trigger !== 'csv') return true;
  return lead.email_norm !== null && emailMatch(usersWithLeadEmail)?.id === lead.merge_into_id;
}

export type MergeCheck =
  | { ok: true }
  | { ok: false; code: 'self' | 'users-never-merged' | 'into-not-user' | 'into-merged' | 'cross-app'; detail: string }
  | { ok: false; code: 'already-merged'; detail: string };

/** R8, R10: which (from, into) pairs may be merged at all. */
export function checkMerge(from: ContactFacts & { app_id: string }, into: ContactFacts & { app_id: string }): MergeCheck {
  if (from.app_id !== into.app_id) return { ok: false, code: 'cross-app', detail: 'contacts belong to different apps' };
  if (from.id === into.id) return { ok: false, code: 'self', detail: 'a contact cannot be merged into itself' };
  if (from.merged_into !== null) return { ok: false, code: 'already-merged', detail: 'the lead was already merged' };
  if (from.role === 'user') return { ok: false, code: 'users-never-merged', detail: 'users are never merged into each other; only leads merge into users' };
  if (into.role !== 'user') return { ok: false, code: 'into-not-user', detail: 'leads merge into users only' };
  if (into.merged_into !== null) return { ok: false, code: 'into-merged', detail: 'the target is not a live contact' };
  return { ok: true };
}

export type BulkClass = 'merge' | 'ambiguous' | 'skipped' | 'unmatched' | 'ineligible';

/** R11: how a bulk merge treats one lead, given the live users sharing its email. */
export function classifyForBulk(lead: ContactFacts, usersWithEmail: readonly ContactFacts[], includeApiLeads: boolean): BulkClass {
  if (lead.role !== 'lead' || lead.merged_into !== null || lead.email_norm === null) return 'ineligible';
  if (lead.created_via === 'csv') return 'ineligible';
  const live = usersWithEmail.filter((u) => u.role === 'user' && u.merged_into === null && u.email_norm === lead.email_norm);
  if (live.length === 0) return 'unmatched';
  if (lead.created_via === 'api' && !includeApiLeads) return 'skipped';
  return live.length === 1 ? 'merge' : 'ambiguous';
}

export type MergeStatus = 'none' | 'pending' | 'done';

/** R5: what a ping reports about merges into the pinging user. */
export function mergeStatus(pending: number, done: number): MergeStatus {
  if (pending > 0) return 'pending';
  return done > 0 ? 'done' : 'none';
}
