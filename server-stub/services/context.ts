/** What every service receives: the database and the things tests want to control. */
import type { Kysely } from 'kysely';
import type { Clock, IdGenerator } from '../ids.ts';
import type { Hub } from '../realtime/hub.ts';
import type { Dialect } from '../storage/database.ts';
import type { LastSeen } from './last-seen.ts';
import type { PingAnswers } from './ping-answers.ts';
import type { Database } from '../storage/schema.ts';

export interface Services {
  db: Kysely<Database>;
  dialect: Dialect;
  clock: Clock;
  ids: IdGenerator;
  hub: Hub;
  /** Wakes the merge worker after a transaction enqueued merge jobs (R5: well under a second). */
  wakeWorker(): void;
  /** Wakes the webhook sender after a transaction recorded deliveries. */
  wakeWebhooks(): void;
  /** Coalesced last-seen writes (a known visitor's ping then writes nothing itself). */
  lastSeen: LastSeen;
  /** Known visitors' ping answers kept between writes (SQLite only; absent on PostgreSQL). */
  pingAnswers?: PingAnswers | undefined;
}

/** A failure the HTTP layer turns into problem+json; nothing was written when one is thrown. */
export class ServiceError extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 409 | 413 | 429,
    readonly slug: string,
    detail: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
  }
}

export const notFound = (what: string) => new ServiceError(404, 'not-found', `${what} not found`);
