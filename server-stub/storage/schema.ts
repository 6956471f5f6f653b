/** Table shapes as kysely sees them. Times are ISO 8601 UTC strings; booleans are 0/1 (portable). */
import type { CreatedVia, MergeTrigger, Role } from '../domain/rules.ts';

export interface AppsTable {
  id: string;
  name: string;
  admin_token: string;
  identity_secret: string;
  webhook_secret: string;
  require_verification: number;
  /** JSON array of origins; ["*"] allows any. */
  allowed_origins: string;
  created_at: string;
}

export interface ContactsTable {
  id: string;
  app_id: string;
  role: Role;
  user_id: string | null;
  email: string | null;
  email_norm: string | null;
  name: string | null;
  created_via: CreatedVia;
  created_at: string;
  updated_at: string;
  last_seen_at: string | null;
  /** Set once merged: the contact is a tombstone pointing at the user. */
  merged_into: string | null;
  merged_at: string | null;
  /** Pending mark (R2, R3). */
  merge_into_id: string | null;
  merge_trigger: MergeTrigger | null;
  /** Custom attributes: a JSON object of JSON values, `{}` when there are none. */
  attributes: string;
  /** Per event name `{ count, first_at, last_at }` (domain/event-summaries.ts), `{}` when none. */
  event_summaries: string;
}

export interface VisitorsTable {
  app_id: string;
  visitor_id: string;
  contact_id: string;
  created_at: string;
}

export interface EventsTable {
  id: string;
  app_id: string;
  contact_id: string;
  name: string;
  metadata: string | null;
  occurred_at: string;
}

export interface ConversationsTable {
  id: string;
  app_id: string;
  contact_id: string;
  client_id: string;
  created_at: string;
  updated_at: string;
  /** When the contact last read the conversation; agent messages after it are unread. */
  contact_read_at: string | null;
}

export interface MessagesTable {
  id: string;
  app_id: string;
  conversation_id: string;
  author_type: 'contact' | 'agent';
  author_id: string;
  body: string;
  client_id: string | null;
  created_at: string;
}

export interface MergesTable {
  id: string;
  app_id: string;
  from_id: string;
  into_id: string;
  trigger: MergeTrigger;
  conversations_moved: number;
  events_moved: number;
  attributes_moved: number;
  created_at: string;
}

export interface JobsTable {
  id: string;
  app_id: string;
  kind: string;
  /** One live job per key: a second enqueue of the same work is a no-op. */
  dedupe_key: string;
  payload: string;
  status: 'pending' | 'running' | 'done' | 'failed';
  attempts: number;
  run_after: string;
  locked_until: string | null;
  last_error: string | null;
  created_at: string;
  updated_at: string;
}

export interface MergeBatchTable {
  batch_id: string;
  from_id: string;
  into_id: string;
  /** A user's attributes and event summaries after a merge (rows keyed by the user's id), else null. */
  attributes: string | null;
  event_summaries: string | null;
}

export type WebhookEvent = 'contact.merged' | 'contact.created' | 'conversation.created' | 'message.created';

export interface WebhooksTable {
  id: string;
  app_id: string;
  url: string;
  /** JSON array of subscribed event names. */
  events: string;
  created_at: string;
}

export interface WebhookDeliveriesTable {
  id: string;
  app_id: string;
  webhook_id: string;
  event: WebhookEvent;
  /** The exact body sent (and signed). */
  payload: string;
  status: 'pending' | 'sending' | 'delivered' | 'failed';
  attempts: number;
  next_attempt_at: string;
  locked_until: string | null;
  created_at: string;
  delivered_at: string | null;
}

export interface WebhookAttemptsTable {
  id: string;
  delivery_id: string;
  attempted_at: string;
  status_code: number | null;
  error: string | null;
  duration_ms: number;
}

export interface Database {
  webhooks: WebhooksTable;
  webhook_deliveries: WebhookDeliveriesTable;
  webhook_attempts: WebhookAttemptsTable;
  merge_batch: MergeBatchTable;
  apps: AppsTable;
  contacts: ContactsTable;
  visitors: VisitorsTable;
  events: EventsTable;
  conversations: ConversationsTable;
  messages: MessagesTable;
  merges: MergesTable;
  jobs: JobsTable;
}
