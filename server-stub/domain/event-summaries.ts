/**
 * A contact's event summaries, kept as one JSON object on its row: per event name, how many times it
 * happened and when first and last. Pure: recording an occurrence and combining two summaries in a
 * merge (R6: counts add, first_at the earlier, last_at the later).
 */
export interface EventSummary {
  count: number;
  first_at: string;
  last_at: string;
}

export type EventSummaries = Record<string, EventSummary>;

export function parseEventSummaries(text: string): EventSummaries {
  return JSON.parse(text) as EventSummaries;
}

/** Names in order, so the stored text and every answer list them the same way. */
export function encodeEventSummaries(summaries: EventSummaries): string {
  return JSON.stringify(Object.fromEntries(Object.keys(summaries).sort().map((k) => [k, summaries[k]])));
}

/** As the API lists them: by name. */
export function eventSummaryList(summaries: EventSummaries): ({ name: string } & EventSummary)[] {
  return Object.keys(summaries).sort().map((name) => ({ name, ...summaries[name]! }));
}

function combine(a: EventSummary | undefined, b: EventSummary): EventSummary {
  if (!a) return { ...b };
  return {
    count: a.count + b.count,
    first_at: b.first_at < a.first_at ? b.first_at : a.first_at,
    last_at: b.last_at > a.last_at ? b.last_at : a.last_at,
  };
}

/** One more occurrence of `name` at `at` (which may be earlier than the last one: late events). */
export function withOccurrence(summaries: EventSummaries, name: string, at: string): EventSummaries {
  const next = { ...summaries };
  put(next, name, combine(Object.hasOwn(summaries, name) ? summaries[name] : undefined, { count: 1, first_at: at, last_at: at }));
  return next;
}

/** R6: the lead's summaries folded into the user's; `moved` is the number of occurrences carried. */
export function carryEventSummaries(user: EventSummaries, lead: EventSummaries): { next: EventSummaries; moved: number } {
  const next = { ...user };
  let moved = 0;
  for (const [name, summary] of Object.entries(lead)) {
    put(next, name, combine(Object.hasOwn(next, name) ? next[name] : undefined, summary));
    moved += summary.count;
  }
  return { next, moved };
}

/** Occurrences in all (what a merge of this contact would carry). */
export function occurrences(summaries: EventSummaries): number {
  return Object.values(summaries).reduce((n, s) => n + s.count, 0);
}

/** An own property whatever the name: `o[name] = v` would treat `__proto__` as the prototype. */
function put(o: EventSummaries, name: string, summary: EventSummary): void {
  Object.defineProperty(o, name, { value: summary, enumerable: true, writable: true, configurable: true });
}
