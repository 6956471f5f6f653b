/** Conversations and their messages. */
import type { Db } from './contacts.ts';
import { sql } from 'kysely';
import type { ContactsTable, ConversationsTable, MessagesTable } from './schema.ts';

export type ConversationRow = ConversationsTable;
export type MessageRow = MessagesTable;

export interface MessageView {
  id: string;
  conversation_id: string;
  body: string;
  author: { type: 'contact' | 'agent'; id: string };
  client_id: string | null;
  created_at: string;
}

export function messageView(m: MessageRow): MessageView {
  return { id: m.id, conversation_id: m.conversation_id, body: m.body, author: { type: m.author_type, id: m.author_id }, client_id: m.client_id, created_at: m.created_at };
}

export async function findConversation(db: Db, appId: string, id: string): Promise<ConversationRow | null> {
  return (await db.selectFrom('conversations').selectAll().where('app_id', '=', appId).where('id', '=', id).executeTakeFirst()) ?? null;
}

export async function findConversationByClientId(db: Db, appId: string, clientId: string): Promise<ConversationRow | null> {
  return (await db.selectFrom('conversations').selectAll().where('app_id', '=', appId).where('client_id', '=', clientId).executeTakeFirst()) ?? null;
}

/** Inserts unless the client_id exists; false when it did (idempotent conversation start). */
export async function insertConversation(db: Db, row: ConversationRow): Promise<boolean> {
  const r = await db.insertInto('conversations').values(row).onConflict((oc) => oc.columns(['app_id', 'client_id']).doNothing()).executeTakeFirst();
  return Number(r.numInsertedOrUpdatedRows ?? 0) === 1;
}

export async function findMessageByClientId(db: Db, appId: string, clientId: string): Promise<MessageRow | null> {
  return (await db.selectFrom('messages').selectAll().where('app_id', '=', appId).where('client_id', '=', clientId).executeTakeFirst()) ?? null;
}

/** Inserts unless the client_id exists; false when it did (idempotent send). */
export async function insertMessage(db: Db, row: MessageRow): Promise<boolean> {
  const q = db.insertInto('messages').values(row);
  const r = row.client_id === null ? await q.executeTakeFirst() : await q.onConflict((oc) => oc.doNothing()).executeTakeFirst();
  if (Number(r.numInsertedOrUpdatedRows ?? 0) !== 1) return false;
  await db.updateTable('conversations').set({ updated_at: row.created_at }).where('id', '=', row.conversation_id).execute();
  return true;
}

export async function listMessages(db: Db, conversationId: string, after?: string, limit = 1000): Promise<MessageRow[]> {
  let q = db.selectFrom('messages').selectAll().where('conversation_id', '=', conversationId);
  if (after) q = q.where('id', '>', after);
  return q.orderBy('id').limit(limit).execute();
}

export interface ConversationSummary {
  id: string;
  contact_id: string;
  created_at: string;
  updated_at: string;
  last_message: MessageView | null;
  unread_count: number;
}

/** A contact's conversations, newest activity first, with last message and unread agent messages. */
export async function listConversations(db: Db, appId: string, contactId: string): Promise<ConversationSummary[]> {
  const convs = await db.selectFrom('conversations').selectAll().where('app_id', '=', appId).where('contact_id', '=', contactId)
    .orderBy('updated_at', 'desc').orderBy('id', 'desc').execute();
  const out: ConversationSummary[] = [];
  for (const c of convs) out.push(await summarise(db, c));
  return out;
}

export async function summarise(db: Db, c: ConversationRow): Promise<ConversationSummary> {
  const last = await db.selectFrom('messages').selectAll().where('conversation_id', '=', c.id).orderBy('id', 'desc').limit(1).executeTakeFirst();
  return { id: c.id, contact_id: c.contact_id, created_at: c.created_at, updated_at: c.updated_at, last_message: last ? messageView(last) : null, unread_count: await unreadInConversation(db, c) };
}

async function unreadInConversation(db: Db, c: ConversationRow): Promise<number> {
  let q = db.selectFrom('messages').select((eb) => eb.fn.countAll<number>().as('n')).where('conversation_id', '=', c.id).where('author_type', '=', 'agent');
  if (c.contact_read_at) q = q.where('created_at', '>', c.contact_read_at);
  return Number((await q.executeTakeFirstOrThrow()).n);
}

/**
 * The hot path of a page view: the cookie's contact and its unread count in one statement.
 * Null when the cookie is unknown, or when its contact is a tombstone (the caller then resolves).
 */
export type VisitorContact = Pick<ContactsTable, 'id' | 'role' | 'user_id' | 'email' | 'name'>;

export async function visitorWithUnread(db: Db, appId: string, visitorId: string): Promise<(VisitorContact & { unread: number }) | null> {
  // Only what a ping answers with: not the attributes and event summaries stored on the row.
  const { rows } = await sql<VisitorContact & { unread: number | string }>`
    select c.id, c.role, c.user_id, c.email, c.name, (
      select count(*) from messages m join conversations v on v.id = m.conversation_id
      where v.contact_id = c.id and m.author_type = 'agent' and (v.contact_read_at is null or m.created_at > v.contact_read_at)
    ) as unread
    from visitors vi join contacts c on c.id = vi.contact_id
    where vi.app_id = ${appId} and vi.visitor_id = ${visitorId} and c.merged_into is null`.execute(db);
  const row = rows[0];
  return row ? { ...row, unread: Number(row.unread) } : null;
}

/** Agent messages the contact has not read, over all their conversations. */
export async function unreadCount(db: Db, appId: string, contactId: string): Promise<number> {
  const r = await db
    .selectFrom('messages')
    .innerJoin('conversations', 'conversations.id', 'messages.conversation_id')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('conversations.app_id', '=', appId)
    .where('conversations.contact_id', '=', contactId)
    .where('messages.author_type', '=', 'agent')
    .where((eb) => eb.or([eb('conversations.contact_read_at', 'is', null), eb('messages.created_at', '>', eb.ref('conversations.contact_read_at'))]))
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

export async function markRead(db: Db, conversationId: string, at: string): Promise<void> {
  await db.updateTable('conversations').set({ contact_read_at: at }).where('id', '=', conversationId).execute();
}
