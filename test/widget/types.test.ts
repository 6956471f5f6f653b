import { readFileSync } from 'node:fs';
import { describe, expect, expectTypeOf, it } from 'vitest';
import type * as Declared from '../../widget/parley.d.mts';
import * as entry from '../../widget/index.ts';

describe('published types (dist/parley.d.mts)', () => {
  it('declare exactly the functions the ES module exports', () => {
    const text = readFileSync('widget/parley.d.mts', 'utf8');
    const declared = [...text.matchAll(/export declare function (\w+)/g)].map((m) => m[1]).sort();
    expect(declared).toEqual(Object.keys(entry).sort());
  });

  it('match the implementation signatures (checked by tsc --noEmit)', () => {
    expectTypeOf(entry.boot).toEqualTypeOf<typeof Declared.boot>();
    expectTypeOf(entry.update).toEqualTypeOf<typeof Declared.update>();
    expectTypeOf(entry.shutdown).toEqualTypeOf<typeof Declared.shutdown>();
    expectTypeOf(entry.show).toEqualTypeOf<typeof Declared.show>();
    expectTypeOf(entry.hide).toEqualTypeOf<typeof Declared.hide>();
    expectTypeOf(entry.showNewMessage).toEqualTypeOf<typeof Declared.showNewMessage>();
    expectTypeOf(entry.trackEvent).toEqualTypeOf<typeof Declared.trackEvent>();
    expectTypeOf(entry.onUnreadCountChange).toEqualTypeOf<typeof Declared.onUnreadCountChange>();
    expectTypeOf(entry.onShow).toEqualTypeOf<typeof Declared.onShow>();
    expectTypeOf(entry.onHide).toEqualTypeOf<typeof Declared.onHide>();
    expectTypeOf(entry.getVisitorId).toEqualTypeOf<typeof Declared.getVisitorId>();
    expect(typeof entry.boot).toBe('function');
  });
});
