/**
 * Who a messenger call is: the visitor cookie's contact, created on first sight (R12: one per
 * cookie), and the login step that binds or marks it for merge into a user (R2, R3, R5, R8).
 */
import { normaliseEmail, type Identity } from '../domain/identity.ts';
import { decideLogin, emailMatch, matchUser, mergeStatus, type MergeStatus, type MergeTrigger, type Role } from '../domain/rules.ts';
import {
  bindVisitor, insertContact, messengerLeadsWithEmail, pendingMarksInto, resolveVisitor, updateContact, usersForIdentity, usersWithEmail,
  type ContactRow, type Db,
} from '../storage/contacts.ts';
import { enqueueJob } from '../storage/jobs.ts';
import { ServiceError, type Services } from './context.ts';
import { contactCreated, emitWebhookEvents } from './webhooks.ts';

export interface Profile {
  name?: string | undefined;
}

function newContact(s: Services, appId: string, role: Role, via: ContactRow['created_via'], fields: Partial<ContactRow> = {}): ContactRow {
  const now = s.clock.now().toISOString();
  return {
    id: s.ids('cnt'), app_id: appId, role, user_id: null, email: null, email_norm: null, name: null, created_via: via,
    created_at: now, updated_at: now, last_seen_at: now, merged_into: null, merged_at: null, merge_into_id: null, merge_trigger: null, attributes: '{}', event_summaries: '{}',
    ...fields,
  };
}

/** The cookie's live contact, creating a visitor (or a lead, R1) on first sight. */
export async function ensureVisitorContact(trx: Db, s: Services, appId: string, visitorId: string, role: 'visitor' | 'lead' = 'visitor'): Promise<ContactRow> {
  const existing = await resolveVisitor(trx, appId, visitorId);
  if (existing) return existing;
  const contact = await insertContact(trx, newContact(s, appId, role, 'messenger'));
  if (await bindVisitor(trx, appId, visitorId, contact.id, contact.created_at)) {
    if (role === 'lead') await emitWebhookEvents(trx, s, appId, [contactCreated(contact)]);
    return contact;
  }
  // Another request bound the cookie first (PostgreSQL, concurrent first pings): use theirs.
  await trx.deleteFrom('contacts').where('id', '=', contact.id).execute();
  const winner = await resolveVisitor(trx, appId, visitorId);
  if (!winner) throw new Error('visitor cookie vanished during first sight');
  return winner;
}

export type LoginResult = { user: ContactRow; status: MergeStatus; enqueued: number };

/**
 * The login step of a ping (or of any messenger call carrying a verified `user`). Throws 409
 * `visitor-reset-required` for R8 before writing anything.
 */
export async function identify(trx: Db, s: Services, appId: string, visitorId: string, identity: Identity, profile: Profile): Promise<LoginResult> {
  const current = await resolveVisitor(trx, appId, visitorId);
  const emailNorm = identity.email === null ? null : normaliseEmail(identity.email);
  const match = matchUser(identity, await usersForIdentity(trx, appId, identity.user_id, emailNorm));
  const decision = decideLogin(identity, current, match?.user ?? null);
  if (decision.kind === 'reset') throw new ServiceError(409, 'visitor-reset-required', `${decision.reason}: start a new visitor`);

  const now = s.clock.now().toISOString();
  let user: ContactRow;
  if (match) {
    user = match.user;
  } else if (decision.kind === 'same' && current) {
    user = current;
  } else {
    user = await createUser(trx, s, appId, identity, profile, 'messenger');
  }
  s.lastSeen.touch(user.id, now);
  const changes: Partial<ContactRow> = {};
  if (identity.user_id !== null && user.user_id === null) changes.user_id = identity.user_id;
  if (identity.email !== null && user.email !== identity.email) Object.assign(changes, { email: identity.email, email_norm: emailNorm });
  if (profile.name !== undefined && profile.name !== user.name) changes.name = profile.name;
  if (Object.keys(changes).length > 0) changes.updated_at = now;
  await updateContact(trx, user.id, changes);
  user = { ...user, ...changes };

  if (decision.kind === 'bind') await bindVisitor(trx, appId, visitorId, user.id, now);
  if (decision.kind === 'mark') await updateContact(trx, decision.from, { merge_into_id: user.id, merge_trigger: 'cookie', updated_at: now });
  if (user.email_norm !== null) await markLeadsMatchingUser(trx, appId, user, 'email');
  const enqueued = await enqueueMergesInto(trx, s, appId, user.id);
  return { user, status: await mergeStatusOf(trx, user.id), enqueued };
}

/** Creates a user; on a unique-constraint race (PostgreSQL), returns the user that won. */
export async function createUser(trx: Db, s: Services, appId: string, identity: Identity, profile: Profile, via: ContactRow['created_via']): Promise<ContactRow> {
  const row = newContact(s, appId, 'user', via, {
    user_id: identity.user_id, email: identity.email, email_norm: identity.email === null ? null : normaliseEmail(identity.email), name: profile.name ?? null,
  });
  const r = await trx.insertInto('contacts').values(row).onConflict((oc) => oc.doNothing()).executeTakeFirst();
  if (Number(r.numInsertedOrUpdatedRows ?? 0) === 1) {
    await emitWebhookEvents(trx, s, appId, [contactCreated(row)]);
    return row;
  }
  const again = matchUser(identity, await usersForIdentity(trx, appId, identity.user_id, row.email_norm));
  if (!again) throw new ServiceError(409, 'conflict', 'a contact with this identity exists');
  return again.user;
}

/**
 * R3/R4: marks the messenger leads whose email equals this user's, when this user is the only one
 * with that email. A mark made by a cookie login (R2) is stronger evidence and is kept.
 */
export async function markLeadsMatchingUser(trx: Db, appId: string, user: ContactRow, trigger: MergeTrigger): Promise<number> {
  if (user.email_norm === null) return 0;
  const target = emailMatch(await usersWithEmail(trx, appId, user.email_norm));
  if (!target) {
    // Several users have this email now: the leads marked by it for one of them are ambiguous (R3
    // needs exactly one user), so those marks go; the merge worker re-checks too.
    await withdrawEmailMarks(trx, appId, user.email_norm);
    return 0;
  }
  if (target.id !== user.id) return 0;
  let marked = 0;
  for (const lead of await messengerLeadsWithEmail(trx, appId, user.email_norm)) {
    if (lead.role !== 'lead' || lead.merge_trigger === 'cookie' || lead.merge_into_id === user.id) continue;
    await updateContact(trx, lead.id, { merge_into_id: user.id, merge_trigger: trigger });
    marked++;
  }
  return marked;
}

/**
 * Drops the email and CSV marks (never cookie marks, R2) of the messenger leads with this email, in
 * one statement that re-checks the trigger: a cookie mark committed meanwhile (PostgreSQL) stays.
 */
export async function withdrawEmailMarks(trx: Db, appId: string, emailNorm: string): Promise<void> {
  await trx.updateTable('contacts').set({ merge_into_id: null, merge_trigger: null })
    .where('app_id', '=', appId).where('email_norm', '=', emailNorm).where('role', 'in', ['visitor', 'lead']).where('created_via', '=', 'messenger')
    .where('merged_into', 'is', null).where('merge_trigger', 'in', ['email', 'csv']).execute();
}

/**
 * R3: a lead that gave an email is marked for the one user who has it. A mark left by an earlier
 * email (or CSV match) goes when the email changes, or the lead would merge into the wrong person.
 */
export async function markLeadIfEmailMatches(trx: Db, appId: string, lead: ContactRow): Promise<void> {
  if (lead.created_via !== 'messenger' || lead.merge_trigger === 'cookie') return;
  const target = lead.email_norm === null ? null : emailMatch(await usersWithEmail(trx, appId, lead.email_norm));
  if (target) await updateContact(trx, lead.id, { merge_into_id: target.id, merge_trigger: 'email' });
  else if (lead.merge_into_id !== null) await updateContact(trx, lead.id, { merge_into_id: null, merge_trigger: null });
}

/** R5: the user pinged, so every contact marked for them gets a merge job now. */
export async function enqueueMergesInto(trx: Db, s: Services, appId: string, userId: string): Promise<number> {
  let n = 0;
  for (const c of await pendingMarksInto(trx, userId)) {
    const payload = JSON.stringify({ from: c.id });
    if (await enqueueJob(trx, { id: s.ids('job'), app_id: appId, kind: 'merge', dedupe_key: `merge:${c.id}`, payload }, s.clock.now().toISOString())) n++;
  }
  return n;
}

export async function mergeStatusOf(db: Db, userId: string): Promise<MergeStatus> {
  const pending = (await pendingMarksInto(db, userId)).length;
  const done = await db.selectFrom('merges').select('id').where('into_id', '=', userId).limit(1).execute();
  return mergeStatus(pending, done.length);
}
