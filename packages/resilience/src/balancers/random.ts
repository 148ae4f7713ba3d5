import type { Balancer, LoadTrackerOptions } from './balancer.js';
import { LoadTracker, createBalancer, randomOption } from './balancer.js';
import { randomEligible } from './eligible.js';

/** Options of {@link random}. */
export interface RandomOptions extends LoadTrackerOptions {
  /** Source of uniform numbers in [0, 1). Default `Math.random`. */
  random?: () => number;
}

/**
 * Picks an eligible candidate uniformly at random. Loads are tracked (defaults `decayMs`
 * 10_000, `clock` systemClock) but not used to pick. Default `random`: `Math.random`.
 */
export function random<E>(options: RandomOptions = {}): Balancer<E> {
  const rnd = randomOption(options.random);
  const tracker = new LoadTracker<E>(options);
  return createBalancer('random', tracker, (candidates, exclude) =>
    randomEligible(candidates, exclude, rnd),
  );
}
