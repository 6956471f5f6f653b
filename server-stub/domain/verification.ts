/**
 * Identity verification (R14): the host site signs the identity it sends with the app's secret.
 * Pure apart from node:crypto, which is deterministic.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Identity } from './identity.ts';

/** The exact string the host site signs: the user_id, or the email when there is no user_id. */
export function signedValue(identity: Identity): string {
  return identity.user_id ?? identity.email ?? '';
}

export function userHash(secret: string, value: string): string {
  return createHmac('sha256', secret).update(value, 'utf8').digest('hex');
}

/** Hex digits compare case-insensitively and in constant time. */
export function verifyUserHash(secret: string, identity: Identity, hash: string | undefined | null): boolean {
  return verifySignedValue(secret, signedValue(identity), hash);
}

/** As verifyUserHash, over the exact string the host site sent (before any trimming). */
export function verifySignedValue(secret: string, value: string, hash: string | undefined | null): boolean {
  if (typeof hash !== 'string' || !/^[0-9a-fA-F]{64}$/.test(hash)) return false;
  const expected = Buffer.from(userHash(secret, value), 'hex');
  const given = Buffer.from(hash.toLowerCase(), 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}
