import { describe, expect, it } from 'vitest';
import { backoffDelay } from '../../widget/backoff.ts';

describe('backoffDelay (pure)', () => {
  it.each([
    [0, 1, 1000],
    [1, 1, 2000],
    [2, 1, 4000],
    [5, 1, 30_000],
    [50, 1, 30_000],
    [0, 0, 500],
    [3, 0, 4000],
  ])('attempt %i with rand %f waits %i ms', (attempt, rand, ms) => {
    expect(backoffDelay(attempt, rand)).toBe(ms);
  });

  it('never exceeds the cap and never goes below half a step, whatever the random number', () => {
    for (let a = 0; a < 20; a++)
      for (const r of [-1, 0, 0.3, 0.99, 2]) {
        const d = backoffDelay(a, r, 100, 5000);
        expect(d).toBeLessThanOrEqual(5000);
        expect(d).toBeGreaterThanOrEqual(Math.min(5000, 100 * 2 ** a) / 2);
      }
  });
});
