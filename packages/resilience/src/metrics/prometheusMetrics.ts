import type { Metrics, Tags } from './metrics.js';

/** Labels as {@link prometheusMetrics} passes them to prom-client. */
export type PromLabels = Record<string, string>;

/** Configuration of a prom-client metric, as {@link prometheusMetrics} builds it. */
export interface PromMetricConfig {
  name: string;
  help: string;
  labelNames: string[];
  registers?: PromRegistryLike[];
  buckets?: number[];
}

/** The part of a prom-client `Registry` {@link prometheusMetrics} uses. */
export interface PromRegistryLike {
  getSingleMetric(name: string): unknown;
}

/**
 * The part of the `prom-client` module {@link prometheusMetrics} uses: pass the module itself
 * (`import * as promClient from 'prom-client'`), so nothing is loaded unless you do.
 */
export interface PromClientLike {
  // The constructors take `any`: prom-client types `registers` with its own Registry class.
  Counter: new (config: any) => { inc(labels: PromLabels, value?: number): void };
  Histogram: new (config: any) => { observe(labels: PromLabels, value: number): void };
  Gauge: new (config: any) => { set(labels: PromLabels, value: number): void };
  /** The default registry, where metrics go without `registry`. */
  register?: PromRegistryLike;
}

/** Options of {@link prometheusMetrics}. */
export interface PrometheusMetricsOptions {
  /** Registry the metrics are registered in. Default prom-client's global `register`. */
  registry?: PromRegistryLike;
  /** Prepended to every metric name. Default `'x_'`. */
  prefix?: string;
  /** Histogram buckets (ms). Default [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]. */
  buckets?: readonly number[];
}

/** Default histogram buckets of {@link prometheusMetrics}, in ms. */
export const DEFAULT_MS_BUCKETS: readonly number[] = Object.freeze([
  1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
]);

/** A valid Prometheus name: characters outside `[a-zA-Z0-9_:]` (dots included) become `_`. */
function sanitize(name: string, allowColon: boolean): string {
  const cleaned = name.replace(allowColon ? /[^a-zA-Z0-9_:]/g : /[^a-zA-Z0-9_]/g, '_');
  return /^[0-9]/.test(cleaned) ? `_${cleaned}` : cleaned;
}

interface Family<M> {
  metric: M;
  /** Tag keys, in label order. */
  keys: string[];
  labelNames: string[];
}

/**
 * {@link Metrics} as prom-client metrics (pass the `prom-client` module). Names: dots (and any
 * other invalid character) become `_`, then `prefix` is prepended; counters end with `_total`,
 * histograms with `_ms` (unless the name already does) and use ms buckets. One metric per name,
 * created lazily on first use (or reused when the registry already has it); its label names are
 * the tag keys of that first observation; later, missing keys are `''` and extra keys dropped.
 * Defaults: `registry` the global one, `prefix` `'x_'`, `buckets` {@link DEFAULT_MS_BUCKETS}.
 */
export function prometheusMetrics(
  promClient: PromClientLike,
  options: PrometheusMetricsOptions = {},
): Metrics {
  if (
    promClient === null ||
    (typeof promClient !== 'object' && typeof promClient !== 'function') ||
    typeof promClient.Counter !== 'function' ||
    typeof promClient.Histogram !== 'function' ||
    typeof promClient.Gauge !== 'function'
  ) {
    throw new TypeError("prometheusMetrics() expects the 'prom-client' module");
  }
  const { registry, prefix = 'x_', buckets = DEFAULT_MS_BUCKETS } = options;
  if (typeof prefix !== 'string') throw new TypeError('prefix must be a string');
  if (
    !Array.isArray(buckets) ||
    buckets.length === 0 ||
    buckets.some(
      (b, i) => typeof b !== 'number' || !Number.isFinite(b) || (i > 0 && b <= buckets[i - 1]!),
    )
  ) {
    throw new RangeError('buckets must be a non-empty, strictly increasing list of finite numbers');
  }
  const lookup: PromRegistryLike | undefined = registry ?? promClient.register;
  const registers = registry === undefined ? undefined : [registry];
  const bucketList = [...buckets];

  function family<M>(
    families: Map<string, Family<M>>,
    name: string,
    suffix: string,
    tags: Tags | undefined,
    create: (config: PromMetricConfig) => M,
  ): Family<M> {
    let found = families.get(name);
    if (found === undefined) {
      let full = sanitize(prefix + name, true);
      if (suffix !== '' && !full.endsWith(suffix)) full += suffix;
      const keys = tags === undefined ? [] : Object.keys(tags);
      const labelNames = keys.map(k => sanitize(k, false));
      const existing =
        typeof lookup?.getSingleMetric === 'function'
          ? (lookup.getSingleMetric(full) as M | undefined)
          : undefined;
      const config: PromMetricConfig = { name: full, help: name, labelNames };
      if (registers !== undefined) config.registers = registers;
      found = { metric: existing ?? create(config), keys, labelNames };
      families.set(name, found);
    }
    return found;
  }

  function labels(f: Family<unknown>, tags: Tags | undefined): PromLabels {
    const out: PromLabels = {};
    for (let i = 0; i < f.keys.length; i++) out[f.labelNames[i]!] = tags?.[f.keys[i]!] ?? '';
    return out;
  }

  type CounterLike = InstanceType<PromClientLike['Counter']>;
  type HistogramLike = InstanceType<PromClientLike['Histogram']>;
  type GaugeLike = InstanceType<PromClientLike['Gauge']>;
  const counters = new Map<string, Family<CounterLike>>();
  const histograms = new Map<string, Family<HistogramLike>>();
  const gauges = new Map<string, Family<GaugeLike>>();

  return {
    increment(name, value = 1, tags) {
      const f = family(counters, name, '_total', tags, c => new promClient.Counter(c));
      f.metric.inc(labels(f, tags), value);
    },
    histogram(name, value, tags) {
      const f = family(histograms, name, '_ms', tags, c => {
        c.buckets = bucketList;
        return new promClient.Histogram(c);
      });
      f.metric.observe(labels(f, tags), value);
    },
    gauge(name, value, tags) {
      const f = family(gauges, name, '', tags, c => new promClient.Gauge(c));
      f.metric.set(labels(f, tags), value);
    },
  };
}
