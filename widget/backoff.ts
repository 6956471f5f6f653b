/**
 * Delay before retry number `attempt` (0-based): exponential from `base`, capped at `max`, with
 * jitter from `rand` in [0, 1) spreading it over [50%, 100%] of the step. Pure: callers pass the
 * random number.
 */
export function backoffDelay(attempt: number, rand = 1, base = 1000, max = 30_000): number {
  const step = Math.min(max, base * 2 ** Math.max(0, attempt));
  return Math.round(step * (0.5 + Math.min(1, Math.max(0, rand)) / 2));
}
