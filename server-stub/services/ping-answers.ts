/**
 * Known visitors' page-view answers, kept in memory between writes. Most messenger traffic is a
 * known visitor's ping on every page view: it writes nothing (last-seen is coalesced) and reads a
 * visitor, its contact and an unread count. Under load that read was the largest cost of a ping, and
 * its answer only changes when one of those rows does.
 *
 * Correctness rests on three rules, none of which knows about particular services:
 * - every statement this process writes is seen (the SQLite driver reports it), and any that may
 *   change an answer (storage/write-effects.ts) drops every kept answer;
 * - an answer read while such a write happened is not kept (a generation number is compared);
 * - another process's commit (the CLI's import or bulk merge on the same file) is seen through
 *   SQLite's data_version, looked at no more than every OTHERS_CHECK_MS: under load that one
 *   statement cost as much as the rest of a ping, so for that long after another process commits,
 *   a page view may get the answer it would have got a moment earlier.
 * So a kept answer is the one the database gives now, or gave within OTHERS_CHECK_MS of now when
 * another process wrote. Only with SQLite: PostgreSQL is shared by several instances whose writes
 * this process cannot see (there it is not created).
 */
import type { PingAnswer } from './messenger.ts';

export interface PingAnswers {
  /** The kept answer, or undefined. Checks other processes' commits first. */
  get(appId: string, visitorId: string): { contactId: string; answer: PingAnswer } | undefined;
  /** Taken before reading, handed to `keep`: an answer read across a write is not kept. */
  readonly generation: number;
  keep(generation: number, appId: string, visitorId: string, contactId: string, answer: PingAnswer): void;
  readonly size: number;
}

export interface PingAnswerSource {
  /** Called for every statement the process writes. */
  onWrite(listener: (sql: string) => void): void;
  /** Changes whenever another connection commits (SQLite `PRAGMA data_version`). */
  dataVersion(): number;
}

const MAX_KEPT = 100_000;
export const OTHERS_CHECK_MS = 50;

export function createPingAnswers(source: PingAnswerSource, mayChangeAnswers: (sql: string) => boolean, now: () => number = () => performance.now()): PingAnswers {
  const kept = new Map<string, { contactId: string; answer: PingAnswer }>();
  let generation = 0;
  let seenVersion = source.dataVersion();
  let checkedAt = now();
  const drop = () => {
    generation++;
    kept.clear();
  };
  source.onWrite((sql) => {
    if (mayChangeAnswers(sql)) drop();
  });
  const key = (appId: string, visitorId: string) => `${appId}\u0000${visitorId}`;
  const othersCommitted = () => {
    const at = now();
    if (at - checkedAt < OTHERS_CHECK_MS) return false;
    checkedAt = at;
    const version = source.dataVersion();
    if (version === seenVersion) return false;
    seenVersion = version;
    drop();
    return true;
  };
  return {
    get(appId, visitorId) {
      if (kept.size === 0 || othersCommitted()) return undefined;
      return kept.get(key(appId, visitorId));
    },
    get generation() {
      return generation;
    },
    keep(readAt, appId, visitorId, contactId, answer) {
      if (readAt !== generation || othersCommitted()) return;
      if (kept.size >= MAX_KEPT) kept.clear(); // bounded: visitors beyond it are simply read again
      kept.set(key(appId, visitorId), { contactId, answer: Object.freeze(answer) });
    },
    get size() {
      return kept.size;
    },
  };
}
