import type { Metrics, Tags } from './metrics.js';

/** OpenTelemetry attributes, as {@link otelMetrics} passes them (the tags as they are). */
export type OtelAttributes = Tags;

/** Options of an OpenTelemetry instrument, as {@link otelMetrics} creates them. */
export interface OtelInstrumentOptions {
  description?: string;
  unit?: string;
}

/** The part of an OpenTelemetry `ObservableResult` {@link otelMetrics} uses. */
export interface OtelObservableResultLike {
  observe(value: number, attributes?: OtelAttributes): void;
}

/**
 * The part of an OpenTelemetry `Meter` (from `@opentelemetry/api`) {@link otelMetrics} uses.
 * `createGauge` (synchronous gauges, API >= 1.9) is optional: without it gauges are observable
 * gauges reporting the last value set per attribute set.
 */
export interface MeterLike {
  createCounter(
    name: string,
    options?: OtelInstrumentOptions,
  ): { add(value: number, attributes?: OtelAttributes): void };
  createHistogram(
    name: string,
    options?: OtelInstrumentOptions,
  ): { record(value: number, attributes?: OtelAttributes): void };
  createGauge?(
    name: string,
    options?: OtelInstrumentOptions,
  ): { record(value: number, attributes?: OtelAttributes): void };
  createObservableGauge(
    name: string,
    options?: OtelInstrumentOptions,
  ): { addCallback(callback: (result: OtelObservableResultLike) => void): void };
}

/** Options of {@link otelMetrics}. */
export interface OtelMetricsOptions {
  /** Prepended verbatim to every instrument name (e.g. `'svc.'`). Default none. */
  prefix?: string;
}

type Record_ = (value: number, attributes?: OtelAttributes) => void;

/**
 * {@link Metrics} recorded on an OpenTelemetry `Meter` (pass `metrics.getMeter(...)`; nothing
 * is imported). Instruments are created lazily, once per name: increment → counter `add`,
 * histogram → histogram (unit `ms`) `record`, gauge → `createGauge` when the meter has it, else
 * an observable gauge reporting the last value per tag set. Tags become attributes. Default
 * `prefix`: none.
 */
export function otelMetrics(meter: MeterLike, options: OtelMetricsOptions = {}): Metrics {
  if (
    meter === null ||
    typeof meter !== 'object' ||
    typeof meter.createCounter !== 'function' ||
    typeof meter.createHistogram !== 'function'
  ) {
    throw new TypeError('otelMetrics() expects an OpenTelemetry Meter');
  }
  const { prefix = '' } = options;
  if (typeof prefix !== 'string') throw new TypeError('prefix must be a string');
  const counters = new Map<string, Record_>();
  const histograms = new Map<string, Record_>();
  const gauges = new Map<string, Record_>();

  const counter = (name: string): Record_ => {
    let add = counters.get(name);
    if (add === undefined) {
      const instrument = meter.createCounter(prefix + name);
      add = (value, attributes) => instrument.add(value, attributes);
      counters.set(name, add);
    }
    return add;
  };

  const histogram = (name: string): Record_ => {
    let record = histograms.get(name);
    if (record === undefined) {
      const instrument = meter.createHistogram(prefix + name, { unit: 'ms' });
      record = (value, attributes) => instrument.record(value, attributes);
      histograms.set(name, record);
    }
    return record;
  };

  const gauge = (name: string): Record_ => {
    let set = gauges.get(name);
    if (set === undefined) {
      if (typeof meter.createGauge === 'function') {
        const instrument = meter.createGauge(prefix + name);
        set = (value, attributes) => instrument.record(value, attributes);
      } else {
        set = observableGauge(meter, prefix + name);
      }
      gauges.set(name, set);
    }
    return set;
  };

  return {
    increment: (name, value = 1, tags) => counter(name)(value, tags),
    histogram: (name, value, tags) => histogram(name)(value, tags),
    gauge: (name, value, tags) => gauge(name)(value, tags),
  };
}

/** An observable gauge holding the last value per tag set; returns its setter. */
function observableGauge(meter: MeterLike, name: string): Record_ {
  const last = new Map<string, { value: number; attributes: OtelAttributes | undefined }>();
  meter.createObservableGauge(name).addCallback(result => {
    for (const { value, attributes } of last.values()) result.observe(value, attributes);
  });
  return (value, attributes) => {
    const key = attributesKey(attributes);
    const entry = last.get(key);
    if (entry === undefined) last.set(key, { value, attributes });
    else entry.value = value;
  };
}

function attributesKey(attributes: OtelAttributes | undefined): string {
  if (attributes === undefined) return '';
  const keys = Object.keys(attributes).sort();
  let key = '';
  for (const k of keys) key += `${JSON.stringify(k)}:${JSON.stringify(attributes[k])},`;
  return key;
}
