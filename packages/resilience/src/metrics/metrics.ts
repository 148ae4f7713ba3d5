/** Metric tags (labels). Keep their values low-cardinality. */
export type Tags = Readonly<Record<string, string>>;

/**
 * The one metrics interface every `@x` package records through. Names are dotted
 * (`resilience.calls`); adapters translate them (Prometheus: `x_resilience_calls_total`).
 * Durations are milliseconds.
 */
export interface Metrics {
  /** Adds `value` (default 1) to a counter. */
  increment(name: string, value?: number, tags?: Tags): void;
  /** Records one observation (a duration in ms, a size) in a histogram. */
  histogram(name: string, value: number, tags?: Tags): void;
  /** Sets a gauge to `value`. */
  gauge(name: string, value: number, tags?: Tags): void;
}

/** Metrics that go nowhere (the default). */
export const noopMetrics: Metrics = {
  increment() {},
  histogram() {},
  gauge() {},
};
