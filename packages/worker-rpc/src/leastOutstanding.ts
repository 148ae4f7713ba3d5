import {
  LoadTracker,
  createBalancer,
  loadCost,
  type Balancer,
  type LoadTrackerOptions,
} from '@x/resilience';

/** Options of {@link leastOutstanding}. */
export interface LeastOutstandingOptions<E> extends LoadTrackerOptions {
  /**
   * Capacity of an endpoint (the largest credit it advertised: its concurrency plus queue). Loads
   * are compared relative to it, so a worker with twice the slots gets twice the calls. Default 1.
   */
  readonly capacityOf?: (endpoint: E) => number;
  /** Cost of each consecutive failure (up to 10), in in-flight calls. Default 5. */
  readonly errorPenalty?: number;
}

/**
 * The default balancer of worker connections: the candidate with the lowest `@x/resilience`
 * {@link loadCost} (`(inFlight + errorPenalty * min(consecutiveFailures, 10)) / capacity`, the
 * formula `leastLoaded` uses with `capacityOf`), scanning every candidate instead of sampling two,
 * ties broken in rotation so equal endpoints share the load (a worker pool is small and its credit
 * exact, so the full scan is both cheap and fairer than power of two choices). Failures do not
 * fade with idle time here: an endpoint that failed is tried again once the others carry as much
 * load. Candidates without credit are filtered out by the connection before `pick`. Defaults
 * `errorPenalty` 5, `capacityOf` 1.
 */
export function leastOutstanding<E>(options: LeastOutstandingOptions<E> = {}): Balancer<E> {
  const { capacityOf, errorPenalty = 5 } = options;
  if (!(errorPenalty >= 0 && errorPenalty < Infinity))
    throw new RangeError(`errorPenalty must be a finite number >= 0, got ${errorPenalty}`);
  if (capacityOf !== undefined && typeof capacityOf !== 'function')
    throw new TypeError(`capacityOf must be a function, got ${typeof capacityOf}`);
  const tracker = new LoadTracker<E>(options);
  const costOptions = { errorPenalty, capacity: 1 };
  let rotation = 0;
  return createBalancer('leastOutstanding', tracker, (candidates, exclude) => {
    const n = candidates.length;
    if (n === 0) return undefined;
    const start = rotation++ % n;
    let best: E | undefined;
    let bestCost = Infinity;
    for (let k = 0; k < n; k++) {
      const candidate = candidates[(start + k) % n]!;
      if (exclude !== undefined && exclude.has(candidate)) continue;
      costOptions.capacity = capacityOf === undefined ? 1 : capacityOf(candidate);
      const cost = loadCost(tracker.peek(candidate), costOptions);
      if (cost < bestCost) {
        bestCost = cost;
        best = candidate;
      }
    }
    return best;
  });
}
