import type { Balancer, LoadTrackerOptions } from './balancer.js';
import { LoadTracker, createBalancer, randomOption } from './balancer.js';
import { loadCost } from './loadCost.js';
import { powerOfTwoChoices } from './powerOfTwoChoices.js';

/** Options of {@link leastLoaded}. */
export interface LeastLoadedOptions<E = unknown> extends LoadTrackerOptions {
  /** Source of uniform numbers in [0, 1). Default `Math.random`. */
  random?: () => number;
  /**
   * Cost of each consecutive failure (counted up to 10), in in-flight requests. Default 5. It
   * fades with the time since the endpoint was last used (`exp(-idle / decayMs)`), so an endpoint
   * that failed is tried again once it has rested, even under light load.
   */
  errorPenalty?: number;
  /**
   * Capacity of an endpoint (its slots: concurrency plus queue). Costs are divided by it, so an
   * endpoint with twice the slots gets twice the requests. Default: every endpoint 1.
   */
  capacityOf?: (endpoint: E) => number;
}

/**
 * The default balancer. Power of two choices: samples two distinct eligible candidates at random
 * and picks the lower {@link loadCost}: `(inFlight + errorPenalty * min(consecutiveFailures, 10) *
 * exp(-idle / decayMs)) / capacity`; ties at random;
 * a single eligible candidate is returned as is. Defaults: `errorPenalty` 5, `random`
 * `Math.random`, `decayMs` 10_000, `clock` systemClock.
 */
export function leastLoaded<E>(options: LeastLoadedOptions<E> = {}): Balancer<E> {
  const rnd = randomOption(options.random);
  const { errorPenalty = 5 } = options;
  if (typeof errorPenalty !== 'number' || !(errorPenalty >= 0 && errorPenalty < Infinity)) {
    throw new RangeError(`errorPenalty must be a finite number >= 0, got ${String(errorPenalty)}`);
  }
  const { capacityOf } = options;
  if (capacityOf !== undefined && typeof capacityOf !== 'function') {
    throw new TypeError(`capacityOf must be a function, got ${typeof capacityOf}`);
  }
  const tracker = new LoadTracker<E>(options);
  const cost = (endpoint: E): number => {
    const load = tracker.peek(endpoint);
    if (load.consecutiveFailures === 0 && capacityOf === undefined) return load.inFlight;
    const rested =
      load.consecutiveFailures === 0
        ? 1
        : Math.exp(-(tracker.clock.now() - load.lastUpdate) / tracker.decayMs);
    return loadCost(load, { errorPenalty, rested, capacity: capacityOf?.(endpoint) });
  };
  return createBalancer('leastLoaded', tracker, (candidates, exclude) =>
    powerOfTwoChoices(candidates, exclude, rnd, cost),
  );
}
