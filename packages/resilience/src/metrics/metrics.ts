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
  /**
   * `false` declares that {@link histogram} discards every observation (a counters-only sink): a
   * caller may then skip measuring what only a histogram would get, such as a duration's clock
   * reads. Absent or `true`: histograms are recorded.
   */
  readonly recordsHistograms?: boolean;
}

/** Metrics that go nowhere (the default). */
export const noopMetrics: Metrics = {
  increment() {},
  histogram() {},
  gauge() {},
  recordsHistograms: false,
};
