import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { App } from '../../server-stub/storage/apps.ts';
import { startTestServer, type TestServer } from '../support/server-app.ts';
import { operator, widget } from './http/helpers.ts';

let t: TestServer;
let app: App;
beforeEach(async () => {
  t = await startTestServer();
  app = await t.createApp();
});
afterEach(async () => t.close());

const count = async (table: 'contacts' | 'conversations' | 'messages' | 'merges' | 'visitors') =>
  Number((await t.parley.services.db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);

describe('R12 concurrency', () => {
  it('R12: 50 parallel first pings of one new visitor make one contact', async () => {
    const w = widget(t, app);
    const answers = await Promise.all(Array.from({ length: 50 }, () => w.ping()));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(new Set(answers.map((a) => a.body.contact.id)).size).toBe(1);
    expect(await count('contacts')).toBe(1);
    expect(await count('visitors')).toBe(1);
  });

  it('R12: 50 parallel conversation starts from one new visitor make one lead and 50 conversations', async () => {
    const w = widget(t, app);
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => w.start(`message ${i}`)));
    expect(answers.every((a) => a.status === 201)).toBe(true);
    expect(new Set(answers.map((a) => a.body.contact.id)).size).toBe(1);
    expect(await count('contacts')).toBe(1);
    expect(await count('conversations')).toBe(50);
    expect(answers[0]!.body.contact.role).toBe('lead');
  });

  it('R12: 50 parallel sends of one client_id store one message', async () => {
    const w = widget(t, app);
    const started = await w.start('first');
    const cid = randomUUID();
    const answers = await Promise.all(Array.from({ length: 50 }, () => w.send(started.body.conversation.id, 'only once', cid)));
    expect(answers.every((a) => a.status === 201)).toBe(true);
    expect(new Set(answers.map((a) => a.body.id)).size).toBe(1);
    expect(await count('messages')).toBe(2);
  });

  it('R12: 50 parallel login pings make one merge', async () => {
    const w = widget(t, app);
    await w.start('hello');
    const answers = await Promise.all(Array.from({ length: 50 }, () => w.login({ user_id: 'u-1', email: 'one@example.com' })));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(new Set(answers.map((a) => a.body.contact.id)).size).toBe(1);
    await t.drain();
    expect(await count('merges')).toBe(1);
    expect((await operator(t, app).contacts('?role=user')).body.data).toHaveLength(1);
  });

  it('R12: two explicit merges of one lead at once produce one merge', async () => {
    const op = operator(t, app);
    const user = await op.createContact({ role: 'user', user_id: 'u' });
    const lead = (await widget(t, app).start('hi')).body.contact.id;
    const [a, b] = await Promise.all([op.merge(lead, user.body.id), op.merge(lead, user.body.id)]);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(a.body.merge.id).toBe(b.body.merge.id);
    expect(await count('merges')).toBe(1);
  });
});

describe('R12 idempotent conversation start under concurrency', () => {
  it('R12: 50 parallel starts with one client_id make one conversation and one message', async () => {
    const w = widget(t, app);
    const cid = randomUUID();
    const answers = await Promise.all(Array.from({ length: 50 }, () => w.start('once', cid)));
    expect(answers.map((a) => a.status).every((s) => s === 201)).toBe(true);
    expect(new Set(answers.map((a) => a.body.conversation.id)).size).toBe(1);
    expect(await count('conversations')).toBe(1);
    expect(await count('messages')).toBe(1);
  });
});
