import type { Metrics, Tags } from './metrics.js';

/**
 * Sends every observation to each of `sinks`, in order. A sink that throws does not stop the
 * others: the first error is rethrown once all have been called. With one sink, returns it. It
 * records histograms unless no sink does (`recordsHistograms`).
 * Throws `TypeError` when a sink is not a {@link Metrics}.
 */
export function multiMetrics(...sinks: Metrics[]): Metrics {
  for (const sink of sinks) {
    if (
      sink === null ||
      typeof sink !== 'object' ||
      typeof sink.increment !== 'function' ||
      typeof sink.histogram !== 'function' ||
      typeof sink.gauge !== 'function'
    ) {
      throw new TypeError('multiMetrics() expects Metrics sinks (increment, histogram, gauge)');
    }
  }
  if (sinks.length === 1) return sinks[0]!;
  const all = [...sinks];
  const fanOut = (method: 'increment' | 'histogram' | 'gauge') => (name: string, value: number, tags?: Tags) => {
    let failed = false;
    let error: unknown;
    for (let i = 0; i < all.length; i++) {
      try {
        all[i]![method](name, value, tags);
      } catch (e) {
        if (!failed) {
          failed = true;
          error = e;
        }
      }
    }
    if (failed) throw error;
  };
  return {
    increment: fanOut('increment'),
    histogram: fanOut('histogram'),
    gauge: fanOut('gauge'),
    recordsHistograms: all.some(sink => sink.recordsHistograms !== false),
  };
}
