import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { App } from '../../../server-stub/storage/apps.ts';
import { mergeLeads, MergeRaceError } from '../../../server-stub/services/merge-engine.ts';
import { setAttributes, getAttributes, getEventSummaries, insertContact, recordEventOccurrence, type ContactRow } from '../../../server-stub/storage/contacts.ts';
import { startTestServer, type TestServer } from '../../support/server-app.ts';

let t: TestServer;
let app: App;
beforeEach(async () => {
  t = await startTestServer();
  app = await t.createApp();
});
afterEach(async () => t.close());

async function contact(id: string, role: ContactRow['role']): Promise<ContactRow> {
  const now = '2026-01-01T00:00:00.000Z';
  return insertContact(t.parley.services.db, {
    id, app_id: app.id, role, user_id: role === 'user' ? `uid-${id}` : null, email: null, email_norm: null, name: null, created_via: 'messenger',
    created_at: now, updated_at: now, last_seen_at: null, merged_into: null, merged_at: null, merge_into_id: null, merge_trigger: null, attributes: '{}', event_summaries: '{}',
  });
}

describe('set-based merge engine', () => {
  it('R6: two leads into one user in one batch: attributes never overwrite, events combine per name', async () => {
    const db = t.parley.services.db;
    await contact('u', 'user');
    await contact('l1', 'lead');
    await contact('l2', 'lead');
    await setAttributes(db, 'u', { plan: 'pro' });
    await setAttributes(db, 'l1', { plan: 'trial', city: 'Lyon' });
    await setAttributes(db, 'l2', { size: 'L' });
    await recordEventOccurrence(db, 'u', 'viewed', '2026-02-01T00:00:00.000Z');
    await recordEventOccurrence(db, 'l1', 'viewed', '2026-01-01T00:00:00.000Z');
    await recordEventOccurrence(db, 'l2', 'viewed', '2026-03-01T00:00:00.000Z');
    await recordEventOccurrence(db, 'l2', 'viewed', '2026-03-02T00:00:00.000Z');
    await recordEventOccurrence(db, 'l2', 'paid', '2026-03-03T00:00:00.000Z');

    const merges = await db.transaction().execute((trx) => mergeLeads(trx, t.parley.services, app.id, [{ from: 'l1', into: 'u' }, { from: 'l2', into: 'u' }], 'bulk'));
    expect(merges.map((m) => [m.from, m.events_moved, m.attributes_moved])).toEqual([['l1', 1, 1], ['l2', 3, 1]]);
    expect(await getAttributes(db, 'u')).toEqual({ plan: 'pro', city: 'Lyon', size: 'L' });
    expect(await getEventSummaries(db, 'u')).toEqual([
      { name: 'paid', count: 1, first_at: '2026-03-03T00:00:00.000Z', last_at: '2026-03-03T00:00:00.000Z' },
      { name: 'viewed', count: 4, first_at: '2026-01-01T00:00:00.000Z', last_at: '2026-03-02T00:00:00.000Z' },
    ]);
    expect(await getAttributes(db, 'l1')).toEqual({});
    expect(await getEventSummaries(db, 'l2')).toEqual([]);
    const tombstones = await db.selectFrom('contacts').select(['id', 'merged_into']).where('id', 'in', ['l1', 'l2']).orderBy('id').execute();
    expect(tombstones).toEqual([{ id: 'l1', merged_into: 'u' }, { id: 'l2', merged_into: 'u' }]);
    expect(await db.selectFrom('merge_batch').selectAll().execute()).toEqual([]);
  });

  it('R12: a batch holding a lead merged meanwhile rolls back whole', async () => {
    const db = t.parley.services.db;
    await contact('u', 'user');
    await contact('l1', 'lead');
    await contact('l2', 'lead');
    await db.transaction().execute((trx) => mergeLeads(trx, t.parley.services, app.id, [{ from: 'l2', into: 'u' }], 'explicit'));
    await expect(db.transaction().execute((trx) => mergeLeads(trx, t.parley.services, app.id, [{ from: 'l1', into: 'u' }, { from: 'l2', into: 'u' }], 'bulk'))).rejects.toBeInstanceOf(MergeRaceError);
    expect((await db.selectFrom('contacts').select('merged_into').where('id', '=', 'l1').executeTakeFirstOrThrow()).merged_into).toBeNull();
    expect(await db.selectFrom('merges').select('from_id').execute()).toEqual([{ from_id: 'l2' }]);
  });
});
