import type { Clock } from '../clock.js';
import { LatencyHistogram } from '../latencyHistogram.js';
import type { Metrics, Tags } from './metrics.js';

/** Summary of one in-memory histogram. */
export interface MemoryHistogramSnapshot {
  count: number;
  sum: number;
  p50: number;
  p99: number;
}

/** Everything recorded, keyed `name{k=v,...}` (tags sorted by key; just `name` without tags). */
export interface MemoryMetricsSnapshot {
  counters: Record<string, number>;
  gauges: Record<string, number>;
  histograms: Record<string, MemoryHistogramSnapshot>;
}

/** {@link Metrics} kept in memory, for tests and dashboards. */
export interface MemoryMetrics extends Metrics {
  /** A copy of the current values, keys sorted. */
  snapshot(): MemoryMetricsSnapshot;
  /** Forgets everything. */
  reset(): void;
}

/** Options of {@link memoryMetrics}: the window of its histograms. */
export interface MemoryMetricsOptions {
  /** Window of each histogram in ms. Default Infinity (keep every value). */
  windowMs?: number;
  /** Slices of each histogram window. Default 6. */
  slices?: number;
  /** Time source of the histograms. Default `systemClock`. */
  clock?: Clock;
}

/** Keys already built per tags object: routes and policies reuse their tag objects call after call. */
const keyCache = new WeakMap<Tags, Map<string, string>>();

/**
 * The snapshot key of a metric: `name{k=v,...}` with tags sorted by key, `name` without tags.
 * Keys are cached per tags object (tags are `Readonly`: do not mutate one after recording with it).
 */
export function metricKey(name: string, tags?: Tags): string {
  if (tags === undefined) return name;
  let byName = keyCache.get(tags);
  let key = byName?.get(name);
  if (key !== undefined) return key;
  const keys = Object.keys(tags);
  if (keys.length === 0) key = name;
  else {
    keys.sort();
    key = `${name}{`;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      key += `${i === 0 ? '' : ','}${k}=${tags[k]}`;
    }
    key += '}';
  }
  if (!byName) keyCache.set(tags, (byName = new Map()));
  byName.set(name, key);
  return key;
}

function checkName(name: string): void {
  if (typeof name !== 'string' || name === '') {
    throw new TypeError(`metric name must be a non-empty string, got ${String(name)}`);
  }
}

function checkValue(value: number): void {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new RangeError(`metric value must be a finite number, got ${String(value)}`);
  }
}

function sorted<T, R>(map: Map<string, T>, f: (value: T) => R): Record<string, R> {
  const out: Record<string, R> = {};
  for (const key of [...map.keys()].sort()) out[key] = f(map.get(key)!);
  return out;
}

/**
 * Metrics kept in memory, with a `snapshot()` for assertions and dashboards. Histograms are
 * {@link LatencyHistogram}s (`p50`/`p99` within ~1.5%; `count`/`sum` exact). Throws
 * `TypeError` on an empty name, `RangeError` on a non-finite value (or a negative histogram
 * value). Defaults: `windowMs` Infinity, `slices` 6, `clock` systemClock.
 */
export function memoryMetrics(options: MemoryMetricsOptions = {}): MemoryMetrics {
  const { windowMs = Infinity, slices, clock } = options;
  const histogramOptions = { windowMs, slices, clock };
  new LatencyHistogram(histogramOptions); // validates the options now rather than on first use
  const counters = new Map<string, number>();
  const gauges = new Map<string, number>();
  const histograms = new Map<string, LatencyHistogram>();
  return {
    increment(name, value = 1, tags) {
      checkName(name);
      checkValue(value);
      const key = metricKey(name, tags);
      counters.set(key, (counters.get(key) ?? 0) + value);
    },
    histogram(name, value, tags) {
      checkName(name);
      checkValue(value);
      const key = metricKey(name, tags);
      let histogram = histograms.get(key);
      if (histogram === undefined) {
        histogram = new LatencyHistogram(histogramOptions);
        histograms.set(key, histogram);
      }
      histogram.record(value);
    },
    gauge(name, value, tags) {
      checkName(name);
      checkValue(value);
      gauges.set(metricKey(name, tags), value);
    },
    snapshot() {
      return {
        counters: sorted(counters, v => v),
        gauges: sorted(gauges, v => v),
        histograms: sorted(histograms, h => ({
          count: h.count,
          sum: h.sum,
          p50: h.percentile(0.5),
          p99: h.percentile(0.99),
        })),
      };
    },
    reset() {
      counters.clear();
      gauges.clear();
      histograms.clear();
    },
  };
}
