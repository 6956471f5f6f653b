import { describe, expect, it } from 'vitest';
import { checkIdentity } from '../../../server-stub/domain/identity.ts';
import {
  checkMerge, classifyForBulk, decideLogin, emailMatch, isAutoMergeable, markHolds, matchUser, mergeStatus, type ContactFacts,
} from '../../../server-stub/domain/rules.ts';
import { userHash, verifyUserHash } from '../../../server-stub/domain/verification.ts';

const contact = (over: Partial<ContactFacts> & { id: string }): ContactFacts & { app_id: string } => ({
  app_id: 'a', role: 'lead', created_via: 'messenger', user_id: null, email_norm: null, merged_into: null, merge_into_id: null, merge_trigger: null, ...over,
});
const user = (id: string, user_id: string | null, email: string | null, over: Partial<ContactFacts> = {}) => contact({ id, role: 'user', user_id, email_norm: email, ...over });

describe('identity values', () => {
  it.each(['', '  ', 'null', 'NULL', ' undefined ', 'anonymous', 'Guest', '0', 'NaN', 'None', '[object Object]'])('junk user_id %j is refused', (v) => {
    expect(checkIdentity(v, undefined).ok).toBe(false);
  });
  it.each(['not-an-email', 'a@b', 'a b@c.de', '@c.de'])('malformed email %j is refused', (v) => {
    expect(checkIdentity(undefined, v).ok).toBe(false);
  });
  it('a real identity passes, email trimmed', () => {
    expect(checkIdentity('u-1', ' Ann@Example.com ')).toEqual({ ok: true, identity: { user_id: 'u-1', email: 'Ann@Example.com' } });
  });
});

describe('R2/R8 login decisions', () => {
  const rows: { name: string; current: ContactFacts | null; target: ContactFacts | null; identity: { user_id: string | null; email: string | null }; kind: string }[] = [
    { name: 'R2: a new cookie binds straight to the user', current: null, target: null, identity: { user_id: 'u1', email: null }, kind: 'bind' },
    { name: 'R2: a messenger visitor is marked for merge', current: contact({ id: 'v', role: 'visitor' }), target: null, identity: { user_id: 'u1', email: null }, kind: 'mark' },
    { name: 'R2: a messenger lead is marked for merge into an existing user', current: contact({ id: 'l' }), target: user('u', 'u1', null), identity: { user_id: 'u1', email: null }, kind: 'mark' },
    { name: 'R2: the cookie already is this user', current: user('u', 'u1', null), target: user('u', 'u1', null), identity: { user_id: 'u1', email: null }, kind: 'same' },
    { name: 'R8: a cookie of user U arriving as W must be reset', current: user('u', 'u1', null), target: user('w', 'u2', null), identity: { user_id: 'u2', email: null }, kind: 'reset' },
    { name: 'R8: a cookie of user U arriving as a new identity must be reset', current: user('u', 'u1', null), target: null, identity: { user_id: 'u9', email: null }, kind: 'reset' },
    { name: 'R8: a lead already cookie-marked for U, arriving as W, must be reset', current: contact({ id: 'l', merge_into_id: 'u', merge_trigger: 'cookie' }), target: user('w', 'u2', null), identity: { user_id: 'u2', email: null }, kind: 'reset' },
    { name: 'R8: a lead cookie-marked for U, arriving as a brand-new identity, must be reset', current: contact({ id: 'l', merge_into_id: 'u', merge_trigger: 'cookie' }), target: null, identity: { user_id: 'new', email: null }, kind: 'reset' },
    { name: 'R2: a lead cookie-marked for U, arriving as U again, stays marked', current: contact({ id: 'l', merge_into_id: 'u', merge_trigger: 'cookie' }), target: user('u', 'u1', null), identity: { user_id: 'u1', email: null }, kind: 'mark' },
    { name: 'R7: an API lead\'s cookie is never merged by a ping', current: contact({ id: 'l', created_via: 'api' }), target: null, identity: { user_id: 'u1', email: null }, kind: 'reset' },
    { name: 'R2: an email-marked lead logging in as another user is re-marked by the cookie', current: contact({ id: 'l', merge_into_id: 'u', merge_trigger: 'email' }), target: user('w', 'u2', null), identity: { user_id: 'u2', email: null }, kind: 'mark' },
  ];
  it.each(rows)('$name', ({ current, target, identity, kind }) => {
    expect(decideLogin(identity, current, target).kind).toBe(kind);
  });
});

describe('matching a user to an identity', () => {
  it('R2: user_id names the user exactly', () => {
    expect(matchUser({ user_id: 'u1', email: null }, [user('a', 'U1', null), user('b', 'u1', null)])?.user.id).toBe('b');
  });
  it('R3: an email-only user adopts the user_id given with the same email', () => {
    expect(matchUser({ user_id: 'u1', email: 'X@y.io' }, [user('a', null, 'x@y.io')])).toEqual({ user: user('a', null, 'x@y.io'), adoptUserId: true });
  });
  it('R11: an email shared by two user_ids names nobody', () => {
    expect(matchUser({ user_id: null, email: 'x@y.io' }, [user('a', 'u1', 'x@y.io'), user('b', 'u2', 'x@y.io')])).toBeNull();
  });
  it('R3: email match needs exactly one live user', () => {
    expect(emailMatch([user('a', 'u1', 'x@y.io')])?.id).toBe('a');
    expect(emailMatch([user('a', 'u1', 'x@y.io'), user('b', 'u2', 'x@y.io')])).toBeNull();
    expect(emailMatch([])).toBeNull();
  });
  it('R3: an email or CSV mark holds only while its user is the one live user with the lead\'s email; a cookie mark always holds', () => {
    const lead = (trigger: ContactFacts['merge_trigger'], into: string | null = 'a') => contact({ id: 'l', email_norm: 'x@y.io', merge_into_id: into, merge_trigger: trigger });
    const a = user('a', 'u1', 'x@y.io');
    const b = user('b', 'u2', 'x@y.io');
    expect(markHolds(lead('email'), [a])).toBe(true);
    expect(markHolds(lead('csv'), [a])).toBe(true);
    expect(markHolds(lead('email'), [a, b])).toBe(false);
    expect(markHolds(lead('csv'), [b])).toBe(false);
    expect(markHolds(lead('email'), [])).toBe(false);
    expect(markHolds(lead('cookie'), [a, b])).toBe(true);
    expect(markHolds(lead(null, null), [a])).toBe(false);
  });
  it('R7: only messenger visitors and leads merge automatically', () => {
    expect(isAutoMergeable(contact({ id: 'l' }))).toBe(true);
    expect(isAutoMergeable(contact({ id: 'l', created_via: 'api' }))).toBe(false);
    expect(isAutoMergeable(user('u', 'u1', null))).toBe(false);
    expect(isAutoMergeable(contact({ id: 'l', merged_into: 'u' }))).toBe(false);
  });
});

describe('R8/R10/R12 which merges are allowed', () => {
  const rows = [
    { name: 'R10: a lead into a user', from: contact({ id: 'l' }), into: user('u', 'u1', null), ok: true, code: undefined },
    { name: 'R10: a contact into itself is refused', from: user('u', 'u1', null), into: user('u', 'u1', null), ok: false, code: 'self' },
    { name: 'R8: a user is never merged into another user', from: user('w', 'u2', null), into: user('u', 'u1', null), ok: false, code: 'users-never-merged' },
    { name: 'R10: leads merge into users only', from: contact({ id: 'l' }), into: contact({ id: 'm' }), ok: false, code: 'into-not-user' },
    { name: 'R12: merging an already merged lead is a no-op', from: contact({ id: 'l', merged_into: 'u' }), into: user('u', 'u1', null), ok: false, code: 'already-merged' },
    { name: 'Isolation: contacts of two apps never merge', from: contact({ id: 'l' }), into: { ...user('u', 'u1', null), app_id: 'b' }, ok: false, code: 'cross-app' },
  ];
  it.each(rows)('$name', ({ from, into, ok, code }) => {
    const r = checkMerge(from, into);
    expect(r.ok).toBe(ok);
    if (!r.ok) expect(r.code).toBe(code);
  });
});

describe('R11 bulk classification', () => {
  const u1 = user('u', 'u1', 'x@y.io');
  const u2 = user('w', 'u2', 'x@y.io');
  const rows = [
    { name: 'R11: a messenger lead matching one user merges', lead: contact({ id: 'l', email_norm: 'x@y.io' }), users: [u1], include: false, cls: 'merge' },
    { name: 'R11: a lead matching two users is ambiguous', lead: contact({ id: 'l', email_norm: 'x@y.io' }), users: [u1, u2], include: false, cls: 'ambiguous' },
    { name: 'R11: an API lead is skipped unless asked', lead: contact({ id: 'l', email_norm: 'x@y.io', created_via: 'api' }), users: [u1], include: false, cls: 'skipped' },
    { name: 'R11: an API lead merges when asked', lead: contact({ id: 'l', email_norm: 'x@y.io', created_via: 'api' }), users: [u1], include: true, cls: 'merge' },
    { name: 'R11: a lead matching no user is not counted', lead: contact({ id: 'l', email_norm: 'x@y.io' }), users: [], include: false, cls: 'unmatched' },
    { name: 'R11: a visitor is not a lead', lead: contact({ id: 'l', role: 'visitor', email_norm: 'x@y.io' }), users: [u1], include: true, cls: 'ineligible' },
  ];
  it.each(rows)('$name', ({ lead, users, include, cls }) => {
    expect(classifyForBulk(lead, users, include)).toBe(cls);
  });
});

describe('R5 merge status', () => {
  it.each([[0, 0, 'none'], [1, 0, 'pending'], [1, 3, 'pending'], [0, 2, 'done']] as const)('R5: pending=%i done=%i is %s', (p, d, s) => {
    expect(mergeStatus(p, d)).toBe(s);
  });
});

describe('R14 identity verification', () => {
  const secret = 's3cret';
  const good = userHash(secret, 'u1');
  it.each([
    ['R14: the right hash passes', good, true],
    ['R14: upper-case hex passes', good.toUpperCase(), true],
    ['R14: a missing hash fails', undefined, false],
    ['R14: an empty hash fails', '', false],
    ['R14: a truncated hash fails', good.slice(0, 63), false],
    ['R14: another user\'s hash fails', userHash(secret, 'u2'), false],
    ['R14: a hash with another secret fails', userHash('other', 'u1'), false],
    ['R14: the email\'s hash fails when a user_id is sent', userHash(secret, 'a@b.co'), false],
  ] as const)('%s', (_n, hash, ok) => {
    expect(verifyUserHash(secret, { user_id: 'u1', email: 'a@b.co' }, hash)).toBe(ok);
  });
  it('R14: with no user_id, the email is what is signed, exactly as sent', () => {
    expect(verifyUserHash(secret, { user_id: null, email: 'Ann@b.co' }, userHash(secret, 'Ann@b.co'))).toBe(true);
    expect(verifyUserHash(secret, { user_id: null, email: 'Ann@b.co' }, userHash(secret, 'ann@b.co'))).toBe(false);
  });
});
