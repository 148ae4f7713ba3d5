import type { Balancer, LoadTrackerOptions } from './balancer.js';
import { LoadTracker, createBalancer, randomOption } from './balancer.js';
import { powerOfTwoChoices } from './powerOfTwoChoices.js';

/** Options of {@link peakEwma}. */
export interface PeakEwmaOptions extends LoadTrackerOptions {
  /** Source of uniform numbers in [0, 1). Default `Math.random`. */
  random?: () => number;
  /** Latency in ms assumed for an endpoint without samples. Default 0 (cost 1 per request). */
  defaultMs?: number;
}

/**
 * Latency-aware power of two choices (Finagle/Linkerd "peak EWMA"): samples two distinct eligible
 * candidates and picks the lower `(ewmaMs || defaultMs + 1) * (inFlight + 1)`, where `ewmaMs`
 * is decayed towards 0 for the time since the endpoint's last update, so a slow endpoint gets
 * probed again after a while. Ties at random. Defaults: `decayMs` 10_000, `defaultMs` 0,
 * `random` `Math.random`, `clock` systemClock.
 */
export function peakEwma<E>(options: PeakEwmaOptions = {}): Balancer<E> {
  const rnd = randomOption(options.random);
  const { defaultMs = 0 } = options;
  if (typeof defaultMs !== 'number' || !(defaultMs >= 0 && defaultMs < Infinity)) {
    throw new RangeError(`defaultMs must be a finite number >= 0, got ${String(defaultMs)}`);
  }
  const tracker = new LoadTracker<E>(options);
  const { clock, decayMs } = tracker;
  const unsampled = defaultMs + 1;
  let now = 0;
  const cost = (endpoint: E): number => {
    const load = tracker.peek(endpoint);
    let ewma = load.ewmaMs;
    if (ewma > 0) {
      const elapsed = now - load.lastUpdate;
      if (elapsed > 0) ewma *= Math.exp(-elapsed / decayMs);
    }
    return (ewma || unsampled) * (load.inFlight + 1);
  };
  return createBalancer('peakEwma', tracker, (candidates, exclude) => {
    now = clock.now();
    return powerOfTwoChoices(candidates, exclude, rnd, cost);
  });
}
