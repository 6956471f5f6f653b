/**
 * Which written statements can change what a known visitor's page-view ping answers (its contact,
 * its merge status, its unread count), read off the SQL text. Pure; used to keep the in-memory
 * ping answers (services/ping-answers.ts) from ever outliving the rows they were read from.
 *
 * It errs one way only: a statement it does not recognise counts as changing answers.
 */

/** Tables a ping answer is read from: the visitor binding, the contact, its conversations and messages, merges (status). */
const ANSWER_TABLES = new Set(['contacts', 'visitors', 'conversations', 'messages', 'merges']);

const TRANSACTION_CONTROL = /^\s*(begin|commit|rollback|end)\b/i;
const INSERT = /^\s*insert\s+into\s+"?([a-z_]+)"?/i;
const UPDATE = /^\s*update\s+"?([a-z_]+)"?\s+set\s+/i;
const DELETE = /^\s*delete\s+from\s+"?([a-z_]+)"?/i;
/** The coalesced last-seen write: one column no answer shows. */
const LAST_SEEN_ONLY = /^\s*update\s+"?contacts"?\s+set\s+"?last_seen_at"?\s*=\s*\?\s+where\s+"?id"?\s*=\s*\?\s*$/i;
/** Setting a contact's attributes or recording an event (storage/contacts.ts): no answer shows them. */
const ATTRIBUTES_OR_EVENTS_ONLY = /^\s*update\s+"?contacts"?\s+set\s+"?(attributes|event_summaries)"?\s*=\s*\?\s+where\s+"?id"?\s*=\s*\?\s*$/i;
/** A row lock taken as a no-op update (`updated_at = updated_at`): it changes nothing at all. */
const NO_OP_LOCK = /^\s*update\s+"?contacts"?\s+set\s+"?updated_at"?\s*=\s*"?updated_at"?\s+where\s/i;

export function mayChangePingAnswers(sql: string): boolean {
  if (TRANSACTION_CONTROL.test(sql)) return false;
  if (LAST_SEEN_ONLY.test(sql) || ATTRIBUTES_OR_EVENTS_ONLY.test(sql) || NO_OP_LOCK.test(sql)) return false;
  const insert = INSERT.exec(sql);
  if (insert) {
    const table = insert[1]!.toLowerCase();
    // A new contact or visitor row cannot change an existing visitor's answer; an upsert can.
    if (table === 'contacts' || table === 'visitors') return /\bdo\s+update\b/i.test(sql);
    return ANSWER_TABLES.has(table);
  }
  const target = UPDATE.exec(sql) ?? DELETE.exec(sql);
  if (target) return ANSWER_TABLES.has(target[1]!.toLowerCase());
  return true;
}
