import { LatencyHistogram } from '@x/resilience';

/** One point of a latency sparkline. */
export interface LatencyPoint {
  /** Epoch ms. */
  readonly at: number;
  readonly p50: number;
  readonly p99: number;
  /** Requests per second over the sample period. */
  readonly rps: number;
  readonly errors: number;
}

/** What the dashboard shows for one endpoint. */
export interface EndpointTelemetry {
  readonly name: string;
  readonly inFlight: number;
  readonly requests: number;
  readonly errors: number;
  readonly history: readonly LatencyPoint[];
}

class Series {
  readonly latency = new LatencyHistogram({ windowMs: 10_000, slices: 10 });
  inFlight = 0;
  requests = 0;
  errors = 0;
  sampledRequests = 0;
  sampledErrors = 0;
  readonly history: LatencyPoint[] = [];
}

/**
 * Latency over time per gateway endpoint (`search`, `orders`, `reports`, `dispatcher`, …):
 * every response is recorded in an `@x/resilience` `LatencyHistogram` (10 s window), and
 * `sample()` (once a second) appends p50/p99 and the request rate to a bounded history that the
 * dashboard draws as sparklines.
 */
export class Telemetry {
  private readonly series = new Map<string, Series>();

  constructor(
    names: readonly string[],
    private readonly points = 90,
  ) {
    for (const name of names) this.series.set(name, new Series());
  }

  private get(name: string): Series {
    let s = this.series.get(name);
    if (!s) {
      s = new Series();
      this.series.set(name, s);
    }
    return s;
  }

  /** Marks a request as started; call the returned function with its status when it ends. */
  start(name: string): (status: number) => void {
    const s = this.get(name);
    const started = performance.now();
    s.inFlight++;
    let done = false;
    return status => {
      if (done) return;
      done = true;
      s.inFlight--;
      s.requests++;
      if (status >= 500 || status === 0) s.errors++;
      s.latency.record(performance.now() - started);
    };
  }

  /** Appends one point per endpoint (call every `periodMs`). */
  sample(periodMs = 1_000): void {
    const at = Date.now();
    for (const s of this.series.values()) {
      s.history.push({
        at,
        p50: round(s.latency.percentile(0.5)),
        p99: round(s.latency.percentile(0.99)),
        rps: round(((s.requests - s.sampledRequests) * 1000) / periodMs),
        errors: s.errors - s.sampledErrors,
      });
      s.sampledRequests = s.requests;
      s.sampledErrors = s.errors;
      if (s.history.length > this.points) s.history.shift();
    }
  }

  snapshot(): EndpointTelemetry[] {
    return [...this.series].map(([name, s]) => ({
      name,
      inFlight: s.inFlight,
      requests: s.requests,
      errors: s.errors,
      history: s.history,
    }));
  }
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
