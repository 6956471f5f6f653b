/** Small steps shared by the HTTP rule tests: a widget's calls and an operator's calls. */
import { randomUUID } from 'node:crypto';
import type { App } from '../../../server-stub/storage/apps.ts';
import { userHash, type TestServer } from '../../support/server-app.ts';

export const newVisitorId = () => randomUUID();

export function widget(t: TestServer, app: App, visitorId = newVisitorId()) {
  const sign = (u: { user_id?: string; email?: string; name?: string }) => ({ ...u, user_hash: userHash(app.identity_secret, u.user_id ?? u.email ?? '') });
  return {
    visitorId,
    ping: (extra: Record<string, unknown> = {}) => t.call('POST', '/v1/messenger/ping', { app_id: app.id, visitor_id: visitorId, ...extra }),
    login: (u: { user_id?: string; email?: string; name?: string }) => t.call('POST', '/v1/messenger/ping', { app_id: app.id, visitor_id: visitorId, user: sign(u) }),
    start: (body = 'Hello there', clientId = randomUUID(), extra: Record<string, unknown> = {}) =>
      t.call('POST', '/v1/messenger/conversations', { app_id: app.id, visitor_id: visitorId, body, client_id: clientId, ...extra }),
    send: (conversationId: string, body: string, clientId = randomUUID()) =>
      t.call('POST', `/v1/messenger/conversations/${conversationId}/messages`, { app_id: app.id, visitor_id: visitorId, body, client_id: clientId }),
    conversations: () => t.call('GET', `/v1/messenger/conversations?app_id=${app.id}&visitor_id=${visitorId}`),
    messages: (conversationId: string, after?: string) =>
      t.call('GET', `/v1/messenger/conversations/${conversationId}/messages?app_id=${app.id}&visitor_id=${visitorId}${after ? `&after=${after}` : ''}`),
    event: (name: string, occurred_at?: string) => t.call('POST', '/v1/messenger/events', { app_id: app.id, visitor_id: visitorId, name, ...(occurred_at ? { occurred_at } : {}) }),
    logout: () => t.call('POST', '/v1/messenger/logout', { app_id: app.id, visitor_id: visitorId }),
    sign,
  };
}

export function operator(t: TestServer, app: App) {
  const token = app.admin_token;
  return {
    createContact: (body: Record<string, unknown>) => t.call('POST', '/v1/contacts', body, { token }),
    contact: (id: string) => t.call('GET', `/v1/contacts/${id}`, undefined, { token }),
    contacts: (query = '') => t.call('GET', `/v1/contacts${query}`, undefined, { token }),
    convert: (id: string, body: Record<string, unknown> = {}) => t.call('POST', `/v1/contacts/${id}/convert`, body, { token }),
    merge: (from: string, into: string) => t.call('POST', '/v1/contacts/merge', { from, into }, { token }),
    bulk: (body: Record<string, unknown> = {}) => t.call('POST', '/v1/merges/bulk', body, { token }),
    merges: (query = '') => t.call('GET', `/v1/merges${query}`, undefined, { token }),
    importCsv: (csv: string) => t.call('POST', '/v1/imports/users', csv, { token, headers: { 'content-type': 'text/csv' } }),
    conversations: (contactId: string) => t.call('GET', `/v1/conversations?contact_id=${contactId}`, undefined, { token }),
    reply: (conversationId: string, body: string) => t.call('POST', `/v1/conversations/${conversationId}/reply`, { body }, { token }),
  };
}
