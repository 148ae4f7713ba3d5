import type { Balancer, LoadTrackerOptions } from './balancer.js';
import { LoadTracker, createBalancer, randomOption } from './balancer.js';
import { powerOfTwoChoices } from './powerOfTwoChoices.js';

/** Options of {@link leastLoaded}. */
export interface LeastLoadedOptions extends LoadTrackerOptions {
  /** Source of uniform numbers in [0, 1). Default `Math.random`. */
  random?: () => number;
  /**
   * Cost of each consecutive failure (counted up to 10), in in-flight requests. Default 5. It
   * fades with the time since the endpoint was last used (`exp(-idle / decayMs)`), so an endpoint
   * that failed is tried again once it has rested, even under light load.
   */
  errorPenalty?: number;
}

/** Consecutive failures beyond this many add no further cost. */
const MAX_COUNTED_FAILURES = 10;

/**
 * The default balancer. Power of two choices: samples two distinct eligible candidates at random
 * and picks the lower `inFlight + errorPenalty * min(consecutiveFailures, 10) * exp(-idle / decayMs)`; ties at random;
 * a single eligible candidate is returned as is. Defaults: `errorPenalty` 5, `random`
 * `Math.random`, `decayMs` 10_000, `clock` systemClock.
 */
export function leastLoaded<E>(options: LeastLoadedOptions = {}): Balancer<E> {
  const rnd = randomOption(options.random);
  const { errorPenalty = 5 } = options;
  if (typeof errorPenalty !== 'number' || !(errorPenalty >= 0 && errorPenalty < Infinity)) {
    throw new RangeError(`errorPenalty must be a finite number >= 0, got ${String(errorPenalty)}`);
  }
  const tracker = new LoadTracker<E>(options);
  const cost = (endpoint: E): number => {
    const load = tracker.peek(endpoint);
    if (load.consecutiveFailures === 0) return load.inFlight;
    const rested = Math.exp(-(tracker.clock.now() - load.lastUpdate) / tracker.decayMs);
    return (
      load.inFlight +
      errorPenalty * Math.min(load.consecutiveFailures, MAX_COUNTED_FAILURES) * rested
    );
  };
  return createBalancer('leastLoaded', tracker, (candidates, exclude) =>
    powerOfTwoChoices(candidates, exclude, rnd, cost),
  );
}
