import type { Balancer, EndpointLoad, LoadTrackerOptions } from './balancer.js';
import { LoadTracker, createBalancer, randomOption } from './balancer.js';

/** Options of {@link priority}. */
export interface PriorityOptions extends LoadTrackerOptions {
  /** Source of uniform numbers in [0, 1). Default `Math.random`. */
  random?: () => number;
}

/**
 * Scores an eligible endpoint (lower is better) from its load (read-only; a zero load for an
 * endpoint never started); `null` (or `undefined`) eliminates it.
 */
export type PriorityFn<E> = (endpoint: E, load: EndpointLoad) => number | null;

/**
 * Lupyne's rule: the eligible candidate with the lowest `fn(endpoint, load)`; `null` eliminates a
 * candidate; ties are broken uniformly at random; undefined when all are eliminated. O(n) per
 * pick, allocation-free. Throws `TypeError` when `fn` returns something else than a number or
 * null (NaN included). Defaults: `random` `Math.random`, `decayMs` 10_000, `clock` systemClock.
 */
export function priority<E>(fn: PriorityFn<E>, options: PriorityOptions = {}): Balancer<E> {
  if (typeof fn !== 'function') throw new TypeError('priority needs a scoring function');
  const rnd = randomOption(options.random);
  const tracker = new LoadTracker<E>(options);
  return createBalancer('priority', tracker, (candidates, exclude) => {
    const hasExclude = exclude !== undefined && exclude.size > 0;
    let best: E | undefined;
    let bestScore = 0;
    let ties = 0;
    for (let i = 0; i < candidates.length; i++) {
      const candidate = candidates[i]!;
      if (hasExclude && exclude.has(candidate)) continue;
      const score = fn(candidate, tracker.peek(candidate) as EndpointLoad) as unknown;
      if (score === null || score === undefined) continue;
      if (typeof score !== 'number' || score !== score) {
        throw new TypeError(`priority fn must return a number or null, got ${String(score)}`);
      }
      if (ties === 0 || score < bestScore) {
        best = candidate;
        bestScore = score;
        ties = 1;
      } else if (score === bestScore && rnd() * ++ties < 1) {
        best = candidate;
      }
    }
    return best;
  });
}
