/** Input shapes of the HTTP API (zod), and the one place that turns zod's issues into a 400. */
import { z } from 'zod';
import { checkIdentity, isValidEmail, type Identity } from '../domain/identity.ts';
import { ServiceError } from '../services/context.ts';

export function parseInput<T extends z.ZodType>(schema: T, value: unknown): z.infer<T> {
  const r = schema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue && issue.path.length > 0 ? issue.path.join('.') : 'body';
    throw new ServiceError(400, 'invalid-input', `${where}: ${issue?.message ?? 'invalid'}`);
  }
  return r.data;
}

/** Junk identities and malformed emails are refused before anything is written. */
export function identityOf(user_id: string | undefined, email: string | undefined): Identity | null {
  const checked = checkIdentity(user_id, email);
  if (!checked.ok) throw new ServiceError(400, 'invalid-identity', checked.reason);
  return checked.identity;
}

const id = z.string().min(1).max(128);
const appId = z.string().min(1).max(64);
export const visitorId = z.string().min(8).max(128).regex(/^[A-Za-z0-9_-]+$/, 'must be an opaque token of letters, digits, - and _');
const clientId = z.string().min(8).max(128);
const body = z.string().max(10_000).refine((s) => s.trim().length > 0, 'must not be empty');
const scalar = z.union([z.string().max(2000), z.number().finite(), z.boolean(), z.null()]);
export const attributes = z.record(z.string().min(1).max(100), scalar).refine((r) => Object.keys(r).length <= 100, 'at most 100 attributes');
const iso = z.string().datetime({ offset: true }).transform((s) => new Date(s).toISOString());

export const user = z.object({
  user_id: z.string().max(255).optional(),
  email: z.string().max(254).optional(),
  name: z.string().max(255).optional(),
  user_hash: z.string().max(256).optional(),
});

export const ping = z.object({
  app_id: appId,
  visitor_id: visitorId,
  user: user.optional(),
  lead: z.object({
    email: z.string().max(254).refine(isValidEmail, 'is not a valid email').optional(),
    name: z.string().max(255).optional(),
  }).optional(),
  attributes: attributes.optional(),
});

export const startConversation = z.object({ app_id: appId, visitor_id: visitorId, user: user.optional(), body, client_id: clientId });
export const sendMessage = z.object({ app_id: appId, visitor_id: visitorId, user: user.optional(), body, client_id: clientId });
export const visitorCall = z.object({ app_id: appId, visitor_id: visitorId });
export const messagesQuery = z.object({ app_id: appId, visitor_id: visitorId, after: id.optional() });
export const event = z.object({
  app_id: appId,
  visitor_id: visitorId,
  user: user.optional(),
  name: z.string().min(1).max(200),
  metadata: z.record(z.string().max(100), scalar).refine((r) => Object.keys(r).length <= 50, 'at most 50 metadata keys').optional(),
  occurred_at: iso.optional(),
});

export const newContact = z.object({
  role: z.enum(['lead', 'user']),
  user_id: z.string().max(255).optional(),
  email: z.string().max(254).optional(),
  name: z.string().max(255).optional(),
  attributes: attributes.optional(),
});

export const listQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(50),
  cursor: id.optional(),
});

export const contactsQuery = listQuery.extend({
  order: z.enum(['oldest', 'newest']).optional(),
  email: z.string().max(254).optional(),
  user_id: z.string().max(255).optional(),
  role: z.enum(['visitor', 'lead', 'user']).optional(),
});

export const convert = z.object({ user_id: z.string().max(255).optional(), email: z.string().max(254).optional() });
export const merge = z.object({ from: id, into: id });
export const bulk = z.object({ dry_run: z.boolean().optional(), include_api_leads: z.boolean().optional() });
export const mergesQuery = listQuery.extend({ contact_id: id.optional() });
export const conversationsQuery = listQuery.extend({ contact_id: id.optional() });
/** A conversation's messages for an operator, oldest first; `cursor` is the last id of the page before. */
export const conversationMessagesQuery = listQuery;
export const reply = z.object({ body });
export const webhook = z.object({
  url: z.string().max(2000).url(),
  events: z.array(z.enum(['contact.merged', 'contact.created', 'conversation.created', 'message.created'])).min(1).optional(),
});
