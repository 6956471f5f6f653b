import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { App } from '../../../server-stub/storage/apps.ts';
import { startTestServer, type TestServer } from '../../support/server-app.ts';
import { dbFingerprint } from '../../support/db-fingerprint.ts';
import { widget } from '../http/helpers.ts';

let t: TestServer;
let app: App;
beforeEach(async () => {
  t = await startTestServer({ lastSeenFlushMs: 60_000 });
  app = await t.createApp();
});
afterEach(async () => t.close());

describe('coalesced last-seen', () => {
  it('a known visitor\'s ping writes nothing itself; last-seen lands with the next flush', async () => {
    const w = widget(t, app);
    const first = await w.ping();
    const before = await dbFingerprint(t.parley.services.db);
    await w.ping();
    expect(await dbFingerprint(t.parley.services.db)).toBe(before);
    await w.login({ user_id: 'u-seen' });
    const afterLogin = await dbFingerprint(t.parley.services.db);
    expect(afterLogin).not.toBe(before); // the login itself writes (user, mark, job)
    await w.login({ user_id: 'u-seen' });
    await t.drain();
    const settled = await dbFingerprint(t.parley.services.db);
    await w.login({ user_id: 'u-seen' });
    expect(await dbFingerprint(t.parley.services.db)).toBe(settled); // a repeat login ping is read-only
    await t.parley.services.lastSeen.flush();
    const row = await t.parley.services.db.selectFrom('contacts').select(['id', 'last_seen_at']).where('role', '=', 'user').executeTakeFirstOrThrow();
    expect(row.last_seen_at).not.toBeNull();
    expect(first.body.contact.id).not.toBe(row.id);
  });
});
