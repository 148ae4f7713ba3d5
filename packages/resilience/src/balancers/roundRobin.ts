import type { Balancer, LoadTrackerOptions } from './balancer.js';
import { LoadTracker, createBalancer } from './balancer.js';

/** Options of {@link roundRobin}: only those of the load tracker. */
export type RoundRobinOptions = LoadTrackerOptions;

/**
 * Cycles through the candidates in order, starting with the first, skipping excluded ones; the
 * position is a counter taken modulo the current length, so it stays valid when the list changes
 * size. After a pick the cycle continues after the chosen candidate. Loads are tracked (see
 * {@link LoadTracker}; defaults `decayMs` 10_000, `clock` systemClock) but not used to pick.
 */
export function roundRobin<E>(options: RoundRobinOptions = {}): Balancer<E> {
  const tracker = new LoadTracker<E>(options);
  let next = 0;
  return createBalancer('roundRobin', tracker, (candidates, exclude) => {
    const n = candidates.length;
    if (n === 0) return undefined;
    let i = next % n;
    if (exclude === undefined || exclude.size === 0) {
      next = i + 1;
      return candidates[i];
    }
    for (let k = 0; k < n; k++) {
      const candidate = candidates[i]!;
      if (!exclude.has(candidate)) {
        next = i + 1;
        return candidate;
      }
      i = i + 1 === n ? 0 : i + 1;
    }
    return undefined;
  });
}
