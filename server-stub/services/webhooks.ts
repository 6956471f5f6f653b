/**
 * Webhooks: an app registers URLs; events are written as deliveries in the same transaction as
 * the change they describe (so none is lost and none is sent for a change that rolled back), then
 * a worker sends them, signed, retrying with exponential backoff (see webhook-worker.ts).
 */
import type { App } from '../storage/apps.ts';
import type { Db } from '../storage/contacts.ts';
import type { WebhookEvent, WebhooksTable } from '../storage/schema.ts';
import { ServiceError, notFound, type Services } from './context.ts';

export const WEBHOOK_EVENTS: readonly WebhookEvent[] = ['contact.merged', 'contact.created', 'conversation.created', 'message.created'];

export interface WebhookView {
  id: string;
  url: string;
  events: WebhookEvent[];
  /**
   * The key of `parley-signature` (HMAC-SHA256 of the body): the app's webhook secret, one per app
   * and so the same on each of its webhooks. Without it no receiver can verify a delivery. It is
   * safe here because these views are answered only on admin-token routes: whoever holds the admin
   * token can already read all of the app's data and point a webhook anywhere, so the secret gives
   * them nothing more. It never appears in the messenger API nor in the delivery log.
   */
  signing_secret: string;
  created_at: string;
}

const view = (w: WebhooksTable, app: App): WebhookView => ({
  id: w.id, url: w.url, events: JSON.parse(w.events) as WebhookEvent[], signing_secret: app.webhook_secret, created_at: w.created_at,
});

export async function registerWebhook(s: Services, app: App, url: string, events: WebhookEvent[] | undefined): Promise<WebhookView> {
  const parsed = new URL(url);
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new ServiceError(400, 'invalid-input', 'url must be http(s)');
  const row: WebhooksTable = { id: s.ids('whk'), app_id: app.id, url, events: JSON.stringify(events ?? WEBHOOK_EVENTS), created_at: s.clock.now().toISOString() };
  await s.db.insertInto('webhooks').values(row).execute();
  return view(row, app);
}

export async function listWebhooks(s: Services, app: App): Promise<{ data: WebhookView[] }> {
  return { data: (await s.db.selectFrom('webhooks').selectAll().where('app_id', '=', app.id).orderBy('id').execute()).map((w) => view(w, app)) };
}

export async function deleteWebhook(s: Services, app: App, id: string): Promise<void> {
  const r = await s.db.deleteFrom('webhooks').where('app_id', '=', app.id).where('id', '=', id).executeTakeFirst();
  if (Number(r.numDeletedRows) === 0) throw notFound('webhook');
}

/** The delivery log of one webhook: every delivery with each of its attempts. */
export async function webhookDeliveries(s: Services, app: App, id: string, limit: number) {
  const hook = await s.db.selectFrom('webhooks').select('id').where('app_id', '=', app.id).where('id', '=', id).executeTakeFirst();
  if (!hook) throw notFound('webhook');
  const deliveries = await s.db.selectFrom('webhook_deliveries').selectAll().where('webhook_id', '=', id).orderBy('id', 'desc').limit(limit).execute();
  const attempts = deliveries.length === 0 ? [] : await s.db.selectFrom('webhook_attempts').selectAll().where('delivery_id', 'in', deliveries.map((d) => d.id)).orderBy('id').execute();
  return {
    data: deliveries.map((d) => ({
      id: d.id, event: d.event, status: d.status, attempts: d.attempts, next_attempt_at: d.status === 'pending' ? d.next_attempt_at : null,
      created_at: d.created_at, delivered_at: d.delivered_at, payload: JSON.parse(d.payload) as unknown,
      attempt_log: attempts.filter((a) => a.delivery_id === d.id).map((a) => ({ attempted_at: a.attempted_at, status_code: a.status_code, error: a.error, duration_ms: a.duration_ms })),
    })),
  };
}

/** The public shape of a contact in webhook payloads. */
export function contactCreated(c: { id: string; role: string; user_id: string | null; email: string | null; name: string | null; created_via: string; created_at: string }): OutgoingEvent {
  return { type: 'contact.created', data: { id: c.id, role: c.role, user_id: c.user_id, email: c.email, name: c.name, created_via: c.created_via, created_at: c.created_at } };
}

export interface OutgoingEvent {
  type: WebhookEvent;
  data: Record<string, unknown>;
}

/**
 * Records deliveries for `events` to every webhook of the app that subscribed to them, inside the
 * caller's transaction. One query finds the webhooks; apps without any pay only that.
 */
export async function emitWebhookEvents(trx: Db, s: Services, appId: string, events: readonly OutgoingEvent[]): Promise<void> {
  if (events.length === 0) return;
  const hooks = await trx.selectFrom('webhooks').select(['id', 'events']).where('app_id', '=', appId).execute();
  if (hooks.length === 0) return;
  const now = s.clock.now().toISOString();
  const rows = [];
  for (const hook of hooks) {
    const wanted = new Set(JSON.parse(hook.events) as string[]);
    for (const e of events) {
      if (!wanted.has(e.type)) continue;
      const id = s.ids('dlv');
      rows.push({
        id, app_id: appId, webhook_id: hook.id, event: e.type,
        payload: JSON.stringify({ id, type: e.type, app_id: appId, created_at: now, data: e.data }),
        status: 'pending' as const, attempts: 0, next_attempt_at: now, locked_until: null, created_at: now, delivered_at: null,
      });
    }
  }
  for (let i = 0; i < rows.length; i += 100) await trx.insertInto('webhook_deliveries').values(rows.slice(i, i + 100)).execute();
  if (rows.length > 0) s.wakeWebhooks(); // the sender re-reads the table, so an early wake only finds nothing yet
}
