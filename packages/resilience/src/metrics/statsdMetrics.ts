import type { Metrics, Tags } from './metrics.js';

/**
 * The part of a StatsD client {@link statsdMetrics} uses; a hot-shots `StatsD` instance fits
 * (tags are passed as an object: DogStatsD `|#k:v`).
 */
export interface StatsdClientLike {
  increment(stat: string, value: number, tags?: Tags): void;
  histogram(stat: string, value: number, tags?: Tags): void;
  gauge(stat: string, value: number, tags?: Tags): void;
}

/** Options of {@link statsdMetrics}. */
export interface StatsdMetricsOptions {
  /** Prepended verbatim to every name (include the separator, e.g. `'svc.'`). Default none. */
  prefix?: string;
}

/**
 * {@link Metrics} sent through a StatsD client such as hot-shots' `StatsD` (pass the instance;
 * nothing is imported): increment → `client.increment`, histogram → `client.histogram`,
 * gauge → `client.gauge`, tags as an object. Default `prefix`: none.
 */
export function statsdMetrics(
  client: StatsdClientLike,
  options: StatsdMetricsOptions = {},
): Metrics {
  if (
    client === null ||
    typeof client !== 'object' ||
    typeof client.increment !== 'function' ||
    typeof client.histogram !== 'function' ||
    typeof client.gauge !== 'function'
  ) {
    throw new TypeError('statsdMetrics() expects a StatsD client (increment, histogram, gauge)');
  }
  const { prefix = '' } = options;
  if (typeof prefix !== 'string') throw new TypeError('prefix must be a string');
  const names = new Map<string, string>();
  const full = (name: string): string => {
    if (prefix === '') return name;
    let prefixed = names.get(name);
    if (prefixed === undefined) {
      prefixed = prefix + name;
      names.set(name, prefixed);
    }
    return prefixed;
  };
  return {
    increment: (name, value = 1, tags) => client.increment(full(name), value, tags),
    histogram: (name, value, tags) => client.histogram(full(name), value, tags),
    gauge: (name, value, tags) => client.gauge(full(name), value, tags),
  };
}
