/**
 * Property-based: random sequences of visitor pings, lead emails, messages (with resends), agent
 * replies, events, logins, logouts, CSV imports, API leads, explicit merges, converts and bulk
 * merges over three apps (one requiring verification), run through the real app on a real SQLite
 * file, the merge worker drained mid-way and at the end. After every sequence:
 * - no message lost or duplicated: the stored messages are exactly the acknowledged ones, with their bodies;
 * - every message's conversation is owned by exactly one live (unmerged) contact of the same app;
 * - no user is ever merged: tombstones are leads or visitors, merged into live users of their app;
 * - event counts are conserved: per app, the live contacts' summaries add up to the accepted events;
 * - the audit matches: exactly one merges row per tombstone, naming the user it points to.
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { App } from '../../../server-stub/storage/apps.ts';
import { startTestServer, userHash, type TestServer } from '../../support/server-app.ts';
import { eventSummaryList, parseEventSummaries } from '../../../server-stub/domain/event-summaries.ts';

const SEED = 20_261_128;
const RUNS = 25;

const APPS = 3;
const VISITORS = 3;
const USERS = 3;
const userId = (u: number) => `user-${u}`;
const email = (u: number) => `person${u}@example.com`;

type Cmd =
  | { k: 'ping'; app: number; v: number; leadEmail: number | null }
  | { k: 'start'; app: number; v: number }
  | { k: 'send'; app: number; v: number; conv: number; resend: boolean }
  | { k: 'reply'; app: number; conv: number }
  | { k: 'event'; app: number; v: number; name: string }
  | { k: 'login'; app: number; v: number; u: number; withEmail: boolean }
  | { k: 'logout'; app: number; v: number }
  | { k: 'import'; app: number; users: number[] }
  | { k: 'apiLead'; app: number; u: number }
  | { k: 'merge'; app: number; from: number; into: number }
  | { k: 'convert'; app: number; contact: number; u: number | null }
  | { k: 'bulk'; app: number; includeApi: boolean }
  | { k: 'drain' };

const app = fc.constantFrom(0, 0, 1, 1, 2);
const v = fc.nat(VISITORS - 1);
const u = fc.nat(USERS - 1);
const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  { arbitrary: fc.record({ k: fc.constant('ping' as const), app, v, leadEmail: fc.option(fc.nat(USERS), { nil: null, freq: 3 }) }), weight: 3 },
  { arbitrary: fc.record({ k: fc.constant('start' as const), app, v }), weight: 3 },
  { arbitrary: fc.record({ k: fc.constant('send' as const), app, v, conv: fc.nat(5), resend: fc.boolean() }), weight: 3 },
  { arbitrary: fc.record({ k: fc.constant('reply' as const), app, conv: fc.nat(20) }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant('event' as const), app, v, name: fc.constantFrom('viewed', 'clicked', 'paid') }), weight: 3 },
  { arbitrary: fc.record({ k: fc.constant('login' as const), app, v, u, withEmail: fc.boolean() }), weight: 3 },
  { arbitrary: fc.record({ k: fc.constant('logout' as const), app, v }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant('import' as const), app, users: fc.uniqueArray(u, { minLength: 1, maxLength: USERS }) }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant('apiLead' as const), app, u }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant('merge' as const), app, from: fc.nat(30), into: fc.nat(30) }), weight: 2 },
  { arbitrary: fc.record({ k: fc.constant('convert' as const), app, contact: fc.nat(30), u: fc.option(u, { nil: null }) }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant('bulk' as const), app, includeApi: fc.boolean() }), weight: 1 },
  { arbitrary: fc.constant({ k: 'drain' as const }), weight: 2 },
);

/** What a command may answer; anything else (a 5xx above all) fails the property. */
const ALLOWED: Record<Cmd['k'], number[]> = {
  ping: [200, 409], start: [201, 409], send: [201, 404, 409], reply: [201], event: [202], login: [200, 409], logout: [204],
  import: [200], apiLead: [201], merge: [200, 400, 404, 409], convert: [200, 400, 404, 409], bulk: [200], drain: [],
};

/** What the sequences actually exercised, so the properties cannot pass by testing nothing. */
const coverage = { sequences: 0, messages: 0, events: 0, merges: new Map<string, number>(), statuses: new Map<string, number>() };

interface Acked {
  app: string;
  body: string;
  conversation: string;
}

async function runSequence(cmds: Cmd[]): Promise<void> {
  const t = await startTestServer();
  try {
    const apps: App[] = [];
    for (let i = 0; i < APPS; i++) apps.push(await t.createApp({ require_verification: i === 0 }));
    // Each run gets fresh cookies; a logout gives that browser a new one, as the widget does (R15).
    const cookies = apps.map(() => Array.from({ length: VISITORS }, () => randomUUID()));
    const conversations = new Map<string, { id: string; clientIds: string[] }[]>();
    const allConversations = apps.map(() => [] as string[]);
    const contacts = apps.map(() => [] as string[]);
    const acked = new Map<string, Acked>();
    const acceptedEvents = apps.map(() => 0);
    const seen = (a: number, id: unknown) => {
      if (typeof id === 'string' && !contacts[a]!.includes(id)) contacts[a]!.push(id);
    };
    const ack = (a: number, m: { id: string; body: string; conversation_id: string }) => {
      const earlier = acked.get(m.id);
      if (earlier) expect(earlier).toEqual({ app: apps[a]!.id, body: m.body, conversation: m.conversation_id });
      acked.set(m.id, { app: apps[a]!.id, body: m.body, conversation: m.conversation_id });
    };

    for (const [step, c] of cmds.entries()) {
      if (c.k === 'drain') {
        await t.drain();
        continue;
      }
      const a = apps[c.app]!;
      const token = a.admin_token;
      const base = 'v' in c ? { app_id: a.id, visitor_id: cookies[c.app]![c.v]! } : { app_id: a.id };
      const key = 'v' in c ? `${c.app}:${c.v}:${cookies[c.app]![c.v]}` : '';
      let res: { status: number; body: any } | null = null;
      switch (c.k) {
        case 'ping': {
          const lead = c.leadEmail === null ? undefined : { email: c.leadEmail < USERS ? email(c.leadEmail) : `stranger${c.leadEmail}@example.com` };
          res = await t.call('POST', '/v1/messenger/ping', { ...base, ...(lead ? { lead } : {}) });
          if (res.status === 200) seen(c.app, res.body.contact.id);
          break;
        }
        case 'start': {
          const clientId = randomUUID();
          res = await t.call('POST', '/v1/messenger/conversations', { ...base, body: `start ${step}`, client_id: clientId });
          if (res.status === 201) {
            conversations.set(key, [...(conversations.get(key) ?? []), { id: res.body.conversation.id, clientIds: [clientId] }]);
            allConversations[c.app]!.push(res.body.conversation.id);
            seen(c.app, res.body.contact.id);
            ack(c.app, res.body.message);
          }
          break;
        }
        case 'send': {
          const mine = conversations.get(key) ?? [];
          if (mine.length === 0) continue;
          const conv = mine[c.conv % mine.length]!;
          const clientId = c.resend && conv.clientIds.length > 1 ? conv.clientIds.at(-1)! : randomUUID();
          res = await t.call('POST', `/v1/messenger/conversations/${conv.id}/messages`, { ...base, body: `message ${clientId}`, client_id: clientId });
          if (res.status === 201) {
            conv.clientIds.push(clientId);
            ack(c.app, res.body);
          }
          break;
        }
        case 'reply': {
          const list = allConversations[c.app]!;
          if (list.length === 0) continue;
          res = await t.call('POST', `/v1/conversations/${list[c.conv % list.length]}/reply`, { body: `agent ${step}` }, { token });
          if (res.status === 201) ack(c.app, res.body);
          break;
        }
        case 'event':
          res = await t.call('POST', '/v1/messenger/events', { ...base, name: c.name });
          if (res.status === 202) acceptedEvents[c.app]!++;
          break;
        case 'login': {
          const user = { user_id: userId(c.u), ...(c.withEmail ? { email: email(c.u) } : {}), user_hash: userHash(a.identity_secret, userId(c.u)) };
          res = await t.call('POST', '/v1/messenger/ping', { ...base, user });
          if (res.status === 200) seen(c.app, res.body.contact.id);
          if (res.status === 409) cookies[c.app]![c.v] = randomUUID(); // R8: the widget starts a fresh visitor
          break;
        }
        case 'logout':
          res = await t.call('POST', '/v1/messenger/logout', base);
          cookies[c.app]![c.v] = randomUUID();
          break;
        case 'import': {
          const csv = `user_id,email,name\n${c.users.map((x) => `${userId(x)},${email(x)},Person ${x}`).join('\n')}\n`;
          res = await t.call('POST', '/v1/imports/users', csv, { token, headers: { 'content-type': 'text/csv' } });
          if (res.status === 200) expect(res.body.failed).toEqual([]);
          break;
        }
        case 'apiLead':
          res = await t.call('POST', '/v1/contacts', { role: 'lead', email: email(c.u) }, { token });
          if (res.status === 201) seen(c.app, res.body.id);
          break;
        case 'merge': {
          const list = contacts[c.app]!;
          if (list.length === 0) continue;
          res = await t.call('POST', '/v1/contacts/merge', { from: list[c.from % list.length], into: list[c.into % list.length] }, { token });
          break;
        }
        case 'convert': {
          const list = contacts[c.app]!;
          if (list.length === 0) continue;
          res = await t.call('POST', `/v1/contacts/${list[c.contact % list.length]}/convert`, c.u === null ? {} : { user_id: userId(c.u), email: email(c.u) }, { token });
          if (res.status === 200) seen(c.app, res.body.id);
          break;
        }
        case 'bulk':
          res = await t.call('POST', '/v1/merges/bulk', { include_api_leads: c.includeApi }, { token });
          break;
      }
      coverage.statuses.set(`${c.k} ${res!.status}`, (coverage.statuses.get(`${c.k} ${res!.status}`) ?? 0) + 1);
      expect(ALLOWED[c.k], `step ${step} ${JSON.stringify(c)} answered ${res!.status} ${JSON.stringify(res!.body).slice(0, 200)}`).toContain(res!.status);
    }
    await t.drain();
    await checkInvariants(t, apps, acked, acceptedEvents);
  } finally {
    await t.close();
  }
}

async function checkInvariants(t: TestServer, apps: App[], acked: Map<string, Acked>, acceptedEvents: number[]): Promise<void> {
  const db = t.parley.services.db;
  const contacts = new Map((await db.selectFrom('contacts').selectAll().execute()).map((c) => [c.id, c]));
  const conversations = new Map((await db.selectFrom('conversations').selectAll().execute()).map((c) => [c.id, c]));
  const messages = await db.selectFrom('messages').selectAll().execute();
  const merges = await db.selectFrom('merges').selectAll().execute();
  const summaries = [...contacts.values()].flatMap((c) => eventSummaryList(parseEventSummaries(c.event_summaries)).map((e) => ({ contact_id: c.id, ...e })));

  coverage.sequences++;
  coverage.messages += messages.length;
  coverage.events += summaries.reduce((n, e) => n + e.count, 0);
  for (const m of merges) coverage.merges.set(m.trigger, (coverage.merges.get(m.trigger) ?? 0) + 1);

  // No message lost or duplicated: the stored messages are exactly the acknowledged ones.
  expect(messages.map((m) => m.id).sort()).toEqual([...acked.keys()].sort());
  for (const m of messages) {
    expect({ app: m.app_id, body: m.body, conversation: m.conversation_id }).toEqual(acked.get(m.id));
    // Owned by exactly one live contact of the same app (a conversation has one contact_id; it must be live).
    const conv = conversations.get(m.conversation_id)!;
    expect(conv.app_id).toBe(m.app_id);
    const owner = contacts.get(conv.contact_id)!;
    expect(owner, `owner of ${conv.id}`).toBeDefined();
    expect(owner.merged_into, `owner of ${conv.id} is live`).toBeNull();
    expect(owner.app_id).toBe(conv.app_id);
  }

  // No user is ever merged; tombstones point at live users of their own app.
  const tombstones = [...contacts.values()].filter((c) => c.merged_into !== null);
  for (const c of contacts.values()) if (c.role === 'user') expect(c.merged_into, `user ${c.id}`).toBeNull();
  for (const tomb of tombstones) {
    expect(['visitor', 'lead']).toContain(tomb.role);
    const into = contacts.get(tomb.merged_into!)!;
    expect(into).toMatchObject({ role: 'user', merged_into: null, app_id: tomb.app_id });
  }

  // The audit matches the merges: one row per tombstone, from it into the user it points to.
  expect(merges.map((m) => m.from_id).sort()).toEqual(tombstones.map((c) => c.id).sort());
  for (const m of merges) {
    const from = contacts.get(m.from_id)!;
    expect({ app: m.app_id, into: m.into_id }).toEqual({ app: from.app_id, into: from.merged_into });
  }

  // Event counts are conserved per app, and only live contacts hold summaries.
  for (const [i, a] of apps.entries()) {
    const live = summaries.filter((s) => contacts.get(s.contact_id)?.app_id === a.id);
    for (const s of live) expect(contacts.get(s.contact_id)!.merged_into, `summary ${s.name} of ${s.contact_id}`).toBeNull();
    expect(live.reduce((n, s) => n + s.count, 0), `events of app ${i}`).toBe(acceptedEvents[i]);
    const rows = await db.selectFrom('events').select((eb) => eb.fn.countAll<number>().as('n')).where('app_id', '=', a.id).executeTakeFirstOrThrow();
    expect(Number(rows.n)).toBe(acceptedEvents[i]);
  }
}

describe('identity and merge invariants under random operation sequences', () => {
  it(`${RUNS} seeded sequences over ${APPS} apps keep messages, owners, users, events and the audit consistent`, async () => {
    await fc.assert(fc.asyncProperty(fc.array(cmd, { minLength: 25, maxLength: 60 }), runSequence), { seed: SEED, numRuns: RUNS });
    console.info(`properties: ${coverage.sequences} sequences, ${coverage.messages} messages, ${coverage.events} events, merges ${JSON.stringify(Object.fromEntries(coverage.merges))}`);
    // Every kind of merge happened somewhere, with messages and events to carry, and R8 refusals were met.
    for (const trigger of ['cookie', 'email', 'csv', 'explicit', 'bulk', 'convert']) expect(coverage.merges.get(trigger) ?? 0, `${trigger} merges`).toBeGreaterThan(0);
    expect(coverage.messages).toBeGreaterThan(100);
    expect(coverage.events).toBeGreaterThan(50);
    expect(coverage.statuses.get('login 409') ?? 0, 'R8 refusals').toBeGreaterThan(0);
  }, 300_000); // alone ~10 s; beside the crash suites on 2 cores it has taken over 2 minutes on PostgreSQL
});
