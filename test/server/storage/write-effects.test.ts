import { describe, expect, it } from 'vitest';
import { mayChangePingAnswers } from '../../../server-stub/storage/write-effects.ts';

describe('which writes may change a known visitor\'s ping answer', () => {
  it.each([
    ['update "contacts" set "name" = ? where "id" = ?'],
    ['update "contacts" set "merge_into_id" = ?, "merge_trigger" = ? where "id" = ?'],
    ['delete from "visitors" where "contact_id" in (select "from_id" from "merge_batch")'],
    ['update "visitors" set "contact_id" = ? where "app_id" = ?'],
    ['insert into "messages" ("id", "conversation_id") values (?, ?)'],
    ['update "conversations" set "contact_read_at" = ? where "id" = ?'],
    ['insert into "conversations" ("id") values (?)'],
    ['insert into "merges" ("id") values (?)'],
    ['insert into "visitors" ("app_id") values (?) on conflict ("app_id", "visitor_id") do update set "contact_id" = excluded."contact_id"'],
    ['UPDATE contacts SET merged_into = (select user_id from batch) WHERE id IN (select lead_id from batch)'],
    ['with x as (select 1) update "contacts" set "name" = ?'],
    ['replace into "contacts" values (?)'],
    ['create table "t" ("a" text)'],
    ['update "contacts" set "last_seen_at" = ?, "name" = ? where "id" = ?'],
    ['update "contacts" set "updated_at" = updated_at, "name" = ? where "id" = ?'],
    ['update "contacts" set "updated_at" = ? where "id" = ?'],
    ['update "contacts" set "attributes" = ?, "name" = ? where "id" = ?'],
    ['update "contacts" set "event_summaries" = ?, "role" = ? where "id" = ?'],
    ['update "contacts" set "attributes" = (select "attributes" from "merge_batch") where "id" in (select "from_id" from "merge_batch")'],
  ])('changes answers: %s', (sql) => {
    expect(mayChangePingAnswers(sql)).toBe(true);
  });

  it.each([
    ['begin'],
    ['commit'],
    ['rollback'],
    ['update "contacts" set "last_seen_at" = ? where "id" = ?'],
    ['update "contacts" set "updated_at" = updated_at where "id" = ? and "merged_into" is null'],
    ['insert into "contacts" ("id", "app_id", "role") values (?, ?, ?)'],
    ['insert into "contacts" ("id") values (?) on conflict do nothing'],
    ['insert into "visitors" ("app_id", "visitor_id", "contact_id", "created_at") values (?, ?, ?, ?) on conflict ("app_id", "visitor_id") do nothing'],
    ['insert into "events" ("id") values (?)'],
    ['update "contacts" set "event_summaries" = ? where "id" = ?'],
    ['update "contacts" set "attributes" = ? where "id" = ?'],
    ['update "jobs" set "status" = ? where "id" = ?'],
    ['delete from "merge_batch" where "batch_id" = ?'],
    ['insert into "webhook_deliveries" ("id") values (?)'],
  ])('leaves answers alone: %s', (sql) => {
    expect(mayChangePingAnswers(sql)).toBe(false);
  });
});
