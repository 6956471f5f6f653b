/**
 * Versioned schema migrations, run at start. Only portable DDL (SQLite and PostgreSQL alike):
 * text ids, ISO text times, integer flags, partial unique indexes.
 */
import { PostgresAdapter, sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';

const migrations: Record<string, Migration> = {
  '0001_initial': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('apps')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('admin_token', 'text', (c) => c.notNull().unique())
        .addColumn('identity_secret', 'text', (c) => c.notNull())
        .addColumn('webhook_secret', 'text', (c) => c.notNull())
        .addColumn('require_verification', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('allowed_origins', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('contacts')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('app_id', 'text', (c) => c.notNull().references('apps.id'))
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text')
        .addColumn('email', 'text')
        .addColumn('email_norm', 'text')
        .addColumn('name', 'text')
        .addColumn('created_via', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addColumn('last_seen_at', 'text')
        .addColumn('merged_into', 'text')
        .addColumn('merged_at', 'text')
        .addColumn('merge_into_id', 'text')
        .addColumn('merge_trigger', 'text')
        .execute();
      // One user per (app, user_id); one user per (app, email) among users without a user_id.
      await db.schema.createIndex('contacts_app_user_id').unique().on('contacts').columns(['app_id', 'user_id'])
        .where('user_id', 'is not', null).execute();
      await db.schema.createIndex('contacts_app_email_no_user_id').unique().on('contacts').columns(['app_id', 'email_norm'])
        .where(sql<boolean>`role = 'user' and user_id is null and merged_into is null and email_norm is not null`).execute();
      await db.schema.createIndex('contacts_app_email').on('contacts').columns(['app_id', 'email_norm']).execute();
      await db.schema.createIndex('contacts_app_role').on('contacts').columns(['app_id', 'role', 'id']).execute();
      await db.schema.createIndex('contacts_merge_into').on('contacts').columns(['merge_into_id']).execute();

      await db.schema
        .createTable('visitors')
        .addColumn('app_id', 'text', (c) => c.notNull())
        .addColumn('visitor_id', 'text', (c) => c.notNull())
        .addColumn('contact_id', 'text', (c) => c.notNull().references('contacts.id'))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('visitors_pk', ['app_id', 'visitor_id'])
        .execute();
      await db.schema.createIndex('visitors_contact').on('visitors').columns(['contact_id']).execute();

      await db.schema
        .createTable('attributes')
        .addColumn('contact_id', 'text', (c) => c.notNull().references('contacts.id'))
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('value', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('attributes_pk', ['contact_id', 'key'])
        .execute();

      await db.schema
        .createTable('event_summaries')
        .addColumn('contact_id', 'text', (c) => c.notNull().references('contacts.id'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('count', 'integer', (c) => c.notNull())
        .addColumn('first_at', 'text', (c) => c.notNull())
        .addColumn('last_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('event_summaries_pk', ['contact_id', 'name'])
        .execute();

      await db.schema
        .createTable('events')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('app_id', 'text', (c) => c.notNull())
        .addColumn('contact_id', 'text', (c) => c.notNull().references('contacts.id'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('metadata', 'text')
        .addColumn('occurred_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('events_contact').on('events').columns(['contact_id']).execute();

      await db.schema
        .createTable('conversations')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('app_id', 'text', (c) => c.notNull())
        .addColumn('contact_id', 'text', (c) => c.notNull().references('contacts.id'))
        .addColumn('client_id', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addColumn('contact_read_at', 'text')
        .addUniqueConstraint('conversations_app_client', ['app_id', 'client_id'])
        .execute();
      await db.schema.createIndex('conversations_contact').on('conversations').columns(['contact_id', 'updated_at']).execute();

      await db.schema
        .createTable('messages')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('app_id', 'text', (c) => c.notNull())
        .addColumn('conversation_id', 'text', (c) => c.notNull().references('conversations.id'))
        .addColumn('author_type', 'text', (c) => c.notNull())
        .addColumn('author_id', 'text', (c) => c.notNull())
        .addColumn('body', 'text', (c) => c.notNull())
        .addColumn('client_id', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('messages_app_client').unique().on('messages').columns(['app_id', 'client_id'])
        .where('client_id', 'is not', null).execute();
      await db.schema.createIndex('messages_conversation').on('messages').columns(['conversation_id', 'id']).execute();

      await db.schema
        .createTable('merges')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('app_id', 'text', (c) => c.notNull())
        .addColumn('from_id', 'text', (c) => c.notNull())
        .addColumn('into_id', 'text', (c) => c.notNull())
        .addColumn('trigger', 'text', (c) => c.notNull())
        .addColumn('conversations_moved', 'integer', (c) => c.notNull())
        .addColumn('events_moved', 'integer', (c) => c.notNull())
        .addColumn('attributes_moved', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('merges_from', ['from_id'])
        .execute();
      await db.schema.createIndex('merges_app').on('merges').columns(['app_id', 'id']).execute();
      await db.schema.createIndex('merges_into').on('merges').columns(['into_id']).execute();

      await db.schema
        .createTable('jobs')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('app_id', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('dedupe_key', 'text', (c) => c.notNull().unique())
        .addColumn('payload', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('run_after', 'text', (c) => c.notNull())
        .addColumn('locked_until', 'text')
        .addColumn('last_error', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('jobs_status').on('jobs').columns(['status', 'run_after']).execute();
    },
  },
  '0002_merge_batches': {
    async up(db: Kysely<any>) {
      // (lead, user) work rows of a set-based merge or marking: filled, used and emptied inside one transaction.
      await db.schema
        .createTable('merge_batch')
        .addColumn('batch_id', 'text', (c) => c.notNull())
        .addColumn('from_id', 'text', (c) => c.notNull())
        .addColumn('into_id', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('merge_batch_pk', ['batch_id', 'from_id'])
        .execute();
    },
  },
  '0003_email_lookup_index': {
    async up(db: Kysely<any>) {
      // Email lookups always name the role too; with both in the index the planner stops
      // preferring (app_id, role), which scanned every user of the app per lookup.
      await db.schema.dropIndex('contacts_app_email').execute();
      await db.schema.createIndex('contacts_app_email_role').on('contacts').columns(['app_id', 'email_norm', 'role']).execute();
    },
  },
  '0004_webhooks': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('webhooks')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('app_id', 'text', (c) => c.notNull().references('apps.id'))
        .addColumn('url', 'text', (c) => c.notNull())
        .addColumn('events', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('webhooks_app').on('webhooks').columns(['app_id']).execute();
      await db.schema
        .createTable('webhook_deliveries')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('app_id', 'text', (c) => c.notNull())
        .addColumn('webhook_id', 'text', (c) => c.notNull())
        .addColumn('event', 'text', (c) => c.notNull())
        .addColumn('payload', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('next_attempt_at', 'text', (c) => c.notNull())
        .addColumn('locked_until', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('delivered_at', 'text')
        .execute();
      await db.schema.createIndex('webhook_deliveries_due').on('webhook_deliveries').columns(['status', 'next_attempt_at']).execute();
      await db.schema.createIndex('webhook_deliveries_hook').on('webhook_deliveries').columns(['webhook_id', 'id']).execute();
      await db.schema
        .createTable('webhook_attempts')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('delivery_id', 'text', (c) => c.notNull())
        .addColumn('attempted_at', 'text', (c) => c.notNull())
        .addColumn('status_code', 'integer')
        .addColumn('error', 'text')
        .addColumn('duration_ms', 'integer', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('webhook_attempts_delivery').on('webhook_attempts').columns(['delivery_id']).execute();
    },
  },
  '0005_user_id_lookup_index': {
    async up(db: Kysely<any>) {
      // As 0003 for emails: user_id lookups name the role too, and without this index SQLite's
      // planner chose (app_id, role) for a user_id IN (...) list, reading every user each time.
      await db.schema.createIndex('contacts_app_user_id_role').on('contacts').columns(['app_id', 'user_id', 'role']).execute();
    },
  },
  '0006_drop_user_id_role_index': {
    async up(db: Kysely<any>) {
      // The user_id lookups now say `user_id is not null`, so the partial unique (app_id, user_id)
      // index serves them; this one only cost every insert of a contact one more index write.
      await db.schema.dropIndex('contacts_app_user_id_role').execute();
    },
  },
  '0007_attributes_on_contact': {
    async up(db: Kysely<any>) {
      // A contact's attributes become one JSON object on its row. As rows of their own, an import
      // wrote three rows and three index entries per user, and a merge inserted, counted and
      // deleted five rows per lead: that table was a third of a bulk merge's statement time. Values
      // stay JSON-encoded, as they were in the old `value` column.
      await db.schema.alterTable('contacts').addColumn('attributes', 'text', (c) => c.notNull().defaultTo('{}')).execute();
      if (db.getExecutor().adapter instanceof PostgresAdapter) {
        await sql`update contacts c set attributes = a.obj
          from (select contact_id, json_object_agg(key, value::json)::text as obj from attributes group by contact_id) a
          where c.id = a.contact_id`.execute(db);
      } else {
        await sql`update contacts set attributes = (select json_group_object(key, json(value)) from attributes a where a.contact_id = contacts.id)
          where id in (select contact_id from attributes)`.execute(db);
      }
      await db.schema.dropTable('attributes').execute();
      // A merge writes its users' new attributes through the work table, in one statement per batch.
      await db.schema.alterTable('merge_batch').addColumn('attributes', 'text').execute();
    },
  },
  '0008_event_summaries_on_contact': {
    async up(db: Kysely<any>) {
      // Event summaries join the attributes on the contact row: `{ name: { count, first_at, last_at } }`.
      // A merge then rewrites each user's row once for both, instead of upserting, summing and
      // deleting summary rows as well (a fifth of a bulk merge's statement time).
      await db.schema.alterTable('contacts').addColumn('event_summaries', 'text', (c) => c.notNull().defaultTo('{}')).execute();
      if (db.getExecutor().adapter instanceof PostgresAdapter) {
        await sql`update contacts c set event_summaries = e.obj
          from (select contact_id, json_object_agg(name, json_build_object('count', count, 'first_at', first_at, 'last_at', last_at))::text as obj
                from event_summaries group by contact_id) e
          where c.id = e.contact_id`.execute(db);
      } else {
        await sql`update contacts set event_summaries = (
            select json_group_object(name, json_object('count', count, 'first_at', first_at, 'last_at', last_at)) from event_summaries e where e.contact_id = contacts.id)
          where id in (select contact_id from event_summaries)`.execute(db);
      }
      await db.schema.dropTable('event_summaries').execute();
      await db.schema.alterTable('merge_batch').addColumn('event_summaries', 'text').execute();
    },
  },
};

export const migrationProvider: MigrationProvider = {
  async getMigrations() {
    return migrations;
  },
};
