/**
 * R11: merge every messenger lead (and API lead when asked) whose email matches exactly one user,
 * in batches: each batch is one transaction, so a crash leaves each lead merged or untouched and a
 * re-run finishes the job. A dry run classifies the same way and writes nothing.
 */
import { occurrences, parseEventSummaries } from '../domain/event-summaries.ts';
import { classifyForBulk, type ContactFacts } from '../domain/rules.ts';
import type { App } from '../storage/apps.ts';
import { refreshStatistics } from '../storage/planner-statistics.ts';
import { transaction } from '../storage/transactions.ts';
import type { Services } from './context.ts';
import { announceMerge, MergeRaceError, mergeLeads, type MergeView } from './merge-engine.ts';

/** The columns the rules read (ContactFacts). */
const FACTS = ['id', 'role', 'created_via', 'user_id', 'email_norm', 'merged_into', 'merge_into_id', 'merge_trigger'] as const;

export interface BulkOptions {
  dry_run?: boolean | undefined;
  include_api_leads?: boolean | undefined;
  batchSize?: number;
  onProgress?: (p: BulkProgress) => void;
}

export interface BulkProgress {
  leads_seen: number;
  merged: number;
}

export interface BulkReport {
  dry_run: boolean;
  merged: number;
  ambiguous: number;
  skipped: number;
  conversations_moved: number;
  events_moved: number;
  /** The leads left alone because several users share their email, for an operator to decide. */
  ambiguous_leads: { id: string; email: string | null; user_ids: string[] }[];
}

const BULK_BATCH = 2000;

export async function bulkMerge(s: Services, app: App, options: BulkOptions = {}): Promise<BulkReport> {
  const dryRun = options.dry_run === true;
  const includeApi = options.include_api_leads === true;
  // 2,000 leads a transaction: measured on 100,000 leads, 1,000 a batch spent more time committing
  // (writing the same index pages again and again) than merging. 3,000 was at most 10% faster
  // but, now that a batch also holds every lead's and user's attributes and event summaries in
  // memory, took the merge process to 303 MB once, and the limit is 300 (measure with
  // `npm run bench:merge -- --merge-batch 3000`).
  const batchSize = options.batchSize ?? BULK_BATCH;
  const report: BulkReport = { dry_run: dryRun, merged: 0, ambiguous: 0, skipped: 0, conversations_moved: 0, events_moved: 0, ambiguous_leads: [] };
  // PostgreSQL: planned with statistics from before a recent import, the batches' user lookups
  // would read every user of the app each time (storage/planner-statistics.ts).
  await refreshStatistics(s.db, 'contacts');
  let cursor = '';
  let seen = 0;
  for (;;) {
    // Only the columns the rules read: a batch of whole rows was most of the merge's memory.
    const leads = await s.db.selectFrom('contacts').select(FACTS).select('email')
      .where('app_id', '=', app.id).where('role', '=', 'lead').where('merged_into', 'is', null).where('email_norm', 'is not', null)
      .where('created_via', 'in', ['messenger', 'api']).where('id', '>', cursor)
      .orderBy('id').limit(batchSize).execute();
    if (leads.length === 0) break;
    cursor = leads[leads.length - 1]!.id;
    seen += leads.length;
    const emails = [...new Set(leads.map((l) => l.email_norm!))];
    const users = await s.db.selectFrom('contacts').select(FACTS)
      .where('app_id', '=', app.id).where('role', '=', 'user').where('merged_into', 'is', null).where('email_norm', 'in', emails).execute();
    const byEmail = new Map<string, ContactFacts[]>();
    for (const u of users) byEmail.set(u.email_norm!, [...(byEmail.get(u.email_norm!) ?? []), u]);

    const toMerge: { lead: ContactFacts; user: ContactFacts }[] = [];
    for (const lead of leads) {
      const matching = byEmail.get(lead.email_norm!) ?? [];
      const cls = classifyForBulk(lead, matching, includeApi);
      if (cls === 'merge') toMerge.push({ lead, user: matching[0]! });
      else if (cls === 'ambiguous') {
        report.ambiguous++;
        if (report.ambiguous_leads.length < 1000) report.ambiguous_leads.push({ id: lead.id, email: lead.email, user_ids: matching.map((u) => u.id) });
      } else if (cls === 'skipped') report.skipped++;
    }

    if (dryRun) {
      await countWhatWouldMove(s, toMerge.map((m) => m.lead.id), report);
      report.merged += toMerge.length;
    } else {
      for (const m of await mergeBatch(s, app, toMerge.map(({ lead, user }) => ({ from: lead.id, into: user.id })))) {
        report.merged++;
        report.conversations_moved += m.conversations_moved;
        report.events_moved += m.events_moved;
        announceMerge(s, m);
      }
    }
    options.onProgress?.({ leads_seen: seen, merged: report.merged });
  }
  return report;
}

/**
 * One batch, one transaction. If another merge took one of its leads meanwhile (a ping's worker,
 * another instance), the batch rolls back and the leads still unmerged are tried again.
 */
async function mergeBatch(s: Services, app: App, pairs: { from: string; into: string }[]): Promise<MergeView[]> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await transaction(s.db, (trx) => mergeLeads(trx, s, app.id, pairs, 'bulk'));
    } catch (error) {
      if (!(error instanceof MergeRaceError) || attempt >= 3) throw error;
      const stillLeads = new Set((await s.db.selectFrom('contacts').select('id').where('id', 'in', pairs.map((p) => p.from)).where('merged_into', 'is', null).execute()).map((r) => r.id));
      pairs = pairs.filter((p) => stillLeads.has(p.from));
    }
  }
}

async function countWhatWouldMove(s: Services, leadIds: string[], report: BulkReport): Promise<void> {
  if (leadIds.length === 0) return;
  const conv = await s.db.selectFrom('conversations').select((eb) => eb.fn.countAll<number>().as('n')).where('contact_id', 'in', leadIds).executeTakeFirstOrThrow();
  const leads = await s.db.selectFrom('contacts').select('event_summaries').where('id', 'in', leadIds).execute();
  report.conversations_moved += Number(conv.n);
  for (const l of leads) report.events_moved += occurrences(parseEventSummaries(l.event_summaries));
}
