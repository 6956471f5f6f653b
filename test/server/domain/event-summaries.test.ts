import { describe, expect, it } from 'vitest';
import { carryEventSummaries, encodeEventSummaries, eventSummaryList, occurrences, parseEventSummaries, withOccurrence } from '../../../server-stub/domain/event-summaries.ts';

const at = (d: number) => `2026-01-${String(d).padStart(2, '0')}T00:00:00.000Z`;

describe('event summaries as one JSON object', () => {
  it('an occurrence counts once, and a late one (earlier than the last) moves first_at, not last_at', () => {
    let s = withOccurrence({}, 'viewed', at(5));
    s = withOccurrence(s, 'viewed', at(9));
    s = withOccurrence(s, 'viewed', at(2));
    expect(s).toEqual({ viewed: { count: 3, first_at: at(2), last_at: at(9) } });
  });

  it('R6: merging sums counts per name, keeps the earlier first_at and the later last_at, and adds new names', () => {
    const user = { viewed: { count: 2, first_at: at(3), last_at: at(4) } };
    const lead = { viewed: { count: 5, first_at: at(1), last_at: at(2) }, paid: { count: 1, first_at: at(7), last_at: at(7) } };
    const { next, moved } = carryEventSummaries(user, lead);
    expect(next).toEqual({ viewed: { count: 7, first_at: at(1), last_at: at(4) }, paid: { count: 1, first_at: at(7), last_at: at(7) } });
    expect(moved).toBe(6);
    expect(user).toEqual({ viewed: { count: 2, first_at: at(3), last_at: at(4) } });
  });

  it('lists by name, counts occurrences, and reads back what it stored', () => {
    const s = withOccurrence(withOccurrence({}, 'b', at(1)), 'a', at(2));
    expect(eventSummaryList(s).map((e) => e.name)).toEqual(['a', 'b']);
    expect(occurrences(s)).toBe(2);
    expect(encodeEventSummaries(s)).toBe(`{"a":{"count":1,"first_at":"${at(2)}","last_at":"${at(2)}"},"b":{"count":1,"first_at":"${at(1)}","last_at":"${at(1)}"}}`);
    expect(parseEventSummaries(encodeEventSummaries(s))).toEqual(s);
  });

  it('an event named __proto__ is an ordinary name', () => {
    const s = withOccurrence({}, '__proto__', at(1));
    expect(Object.getPrototypeOf(s)).toBe(Object.prototype);
    expect(eventSummaryList(parseEventSummaries(encodeEventSummaries(s)))).toEqual([{ name: '__proto__', count: 1, first_at: at(1), last_at: at(1) }]);
  });
});
