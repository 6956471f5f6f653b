import { describe, expect, it } from 'vitest';
import { carryAttributes, encodeAttributes, parseAttributes, withAttributes } from '../../../server-stub/domain/attributes.ts';

describe('attributes as one JSON object', () => {
  it('R6: a lead\'s attribute goes to the user only where the user has no value for that key (null is a value)', () => {
    const { next, moved } = carryAttributes({ plan: 'pro', vip: null }, { plan: 'trial', vip: true, city: 'Lyon' });
    expect(next).toEqual({ plan: 'pro', vip: null, city: 'Lyon' });
    expect(moved).toBe(1);
  });

  it('carrying over leaves both inputs as they were', () => {
    const user = { a: 1 };
    const lead = { b: 2 };
    carryAttributes(user, lead);
    expect(user).toEqual({ a: 1 });
    expect(lead).toEqual({ b: 2 });
  });

  it('setting replaces the given keys, keeps the others, and says whether anything changed', () => {
    expect(withAttributes({ a: 1, b: 'x' }, { b: 'y', c: null })).toEqual({ next: { a: 1, b: 'y', c: null }, changed: true });
    expect(withAttributes({ a: 1, b: 'x' }, { b: 'x' })).toEqual({ next: { a: 1, b: 'x' }, changed: false });
    // A key set to null is set (it was absent): a change.
    expect(withAttributes({}, { a: null }).changed).toBe(true);
  });

  it('is stored with its keys in order, and reads back equal', () => {
    const text = encodeAttributes({ b: 2, a: 'é"\\', c: [1] });
    expect(text).toBe('{"a":"é\\"\\\\","b":2,"c":[1]}');
    expect(parseAttributes(text)).toEqual({ a: 'é"\\', b: 2, c: [1] });
  });

  it('a key such as __proto__ is an ordinary attribute, not a prototype change', () => {
    const changes = JSON.parse('{"__proto__": "x"}') as Record<string, unknown>;
    for (const next of [withAttributes({}, changes).next, carryAttributes({}, changes).next]) {
      expect(Object.getPrototypeOf(next)).toBe(Object.prototype);
      expect(Object.keys(next)).toEqual(['__proto__']);
      expect(parseAttributes(encodeAttributes(next))).toEqual(changes);
    }
  });
});
