import type { EndpointLoad } from './balancer.js';

/** Consecutive failures beyond this many add no further cost. */
export const MAX_COUNTED_FAILURES = 10;

/** Options of {@link loadCost}. */
export interface LoadCostOptions {
  /** Cost of each consecutive failure (counted up to 10), in in-flight requests. */
  readonly errorPenalty: number;
  /** How much of the failure cost remains (1 = all; `exp(-idle / decayMs)` to let it fade). Default 1. */
  readonly rested?: number;
  /** The endpoint's capacity (slots); the cost is divided by it, at least 1. Default 1. */
  readonly capacity?: number;
}

/**
 * The least-loaded cost of an endpoint, shared by every balancer that compares loads:
 * `(inFlight + errorPenalty * min(consecutiveFailures, 10) * rested) / max(1, capacity)`.
 * Lower is better.
 */
export function loadCost(load: Readonly<EndpointLoad>, options: LoadCostOptions): number {
  const capacity = options.capacity === undefined ? 1 : Math.max(1, options.capacity);
  let cost = load.inFlight;
  if (load.consecutiveFailures > 0) {
    cost +=
      options.errorPenalty *
      Math.min(load.consecutiveFailures, MAX_COUNTED_FAILURES) *
      (options.rested ?? 1);
  }
  return capacity === 1 ? cost : cost / capacity;
}
