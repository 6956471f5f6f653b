/**
 * Id generation, injected so tests can make ids predictable. Ids are opaque to clients but sort in
 * creation order within a process, which is what `after=` cursors and list pagination rely on.
 */
import { randomBytes } from 'node:crypto';

export type IdGenerator = (prefix: string) => string;

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

function base32(n: number, width: number): string {
  let out = '';
  for (let i = 0; i < width; i++) {
    out = ALPHABET[n % 32] + out;
    n = Math.floor(n / 32);
  }
  return out;
}

// Random bytes drawn 4 KiB at a time: one call per id was a visible cost in bulk imports.
let pool = randomBytes(4096);
let poolAt = 0;
function randomByte(): number {
  if (poolAt >= pool.length) {
    pool = randomBytes(4096);
    poolAt = 0;
  }
  return pool[poolAt++]!;
}

/** Time-ordered ids: 10 chars of milliseconds, 4 of a per-millisecond sequence, 12 random. */
export function createIdGenerator(now: () => number = Date.now): IdGenerator {
  let lastMs = 0;
  let seq = 0;
  return (prefix) => {
    let ms = now();
    if (ms <= lastMs) {
      ms = lastMs;
      seq++;
      if (seq >= 32 ** 4) {
        lastMs = ms + 1;
        ms = lastMs;
        seq = 0;
      }
    } else {
      lastMs = ms;
      seq = 0;
    }
    let r = '';
    for (let i = 0; i < 12; i++) r += ALPHABET[randomByte() & 31];
    return `${prefix}_${base32(ms, 10)}${base32(seq, 4)}${r}`;
  };
}

/** A random secret or token, hex. */
export function randomToken(bytes = 24): string {
  return randomBytes(bytes).toString('hex');
}

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

export function iso(clock: Clock): string {
  return clock.now().toISOString();
}
