/** The function the page calls: `Parley('boot', {...})`. The snippet's stub keeps calls in `q`. */
export type ParleyCommand = ((method: string, ...args: unknown[]) => unknown) & { q?: ArrayLike<unknown>[] };

/**
 * Replaces the snippet's queueing stub (if any) with the real dispatcher, then replays the queued
 * calls in the order they were made. Unknown methods are reported, not thrown, so one typo on a
 * page cannot break the calls after it.
 */
export function install(w: Record<string, unknown>, api: Record<string, unknown>): ParleyCommand {
  const queue = (w.Parley as ParleyCommand | undefined)?.q ?? [];
  const parley: ParleyCommand = (method, ...args) => {
    const f = api[method];
    if (typeof f === 'function') return (f as (...a: unknown[]) => unknown)(...args);
    console.error(`[parley] unknown method "${method}"`);
    return undefined;
  };
  w.Parley = parley;
  for (const call of Array.from(queue)) {
    const [method, ...args] = Array.from(call);
    parley(String(method), ...args);
  }
  return parley;
}
