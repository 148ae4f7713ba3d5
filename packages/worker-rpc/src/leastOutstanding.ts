import { LoadTracker, createBalancer, type Balancer, type LoadTrackerOptions } from '@x/resilience';

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
 * The default balancer of worker connections: the candidate with the fewest calls in flight
 * relative to the capacity its worker advertises (`(inFlight + penalty) / capacity`), ties broken
 * in rotation so equal endpoints share the load. Candidates without credit are filtered out by the
 * connection before `pick`. Built on `@x/resilience`'s `LoadTracker`; defaults `errorPenalty` 5,
 * `capacityOf` 1.
 */
export function leastOutstanding<E>(options: LeastOutstandingOptions<E> = {}): Balancer<E> {
  const { capacityOf = () => 1, errorPenalty = 5 } = options;
  if (!(errorPenalty >= 0 && errorPenalty < Infinity))
    throw new RangeError(`errorPenalty must be a finite number >= 0, got ${errorPenalty}`);
  const tracker = new LoadTracker<E>(options);
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
      const load = tracker.peek(candidate);
      const capacity = Math.max(1, capacityOf(candidate));
      const cost =
        (load.inFlight + errorPenalty * Math.min(load.consecutiveFailures, 10)) / capacity;
      if (cost < bestCost) {
        bestCost = cost;
        best = candidate;
      }
    }
    return best;
  });
}
