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
  /** Errors / requests over the same window as p50 / p99 (`WINDOW_MS`); 0 without requests. */
  readonly errorRate: number;
}

/** The window p50, p99 and the error rate are computed over. */
export const WINDOW_MS = 10_000;
const SLICES = 10;

/** What the dashboard shows for one endpoint. */
export interface EndpointTelemetry {
  readonly name: string;
  readonly inFlight: number;
  readonly requests: number;
  readonly errors: number;
  /** Errors / requests over the last `WINDOW_MS`, like p50 / p99. */
  readonly errorRate: number;
  readonly history: readonly LatencyPoint[];
}

/**
 * Requests and errors in `SLICES` rotating slices of `WINDOW_MS / SLICES`: the same window and
 * slicing as the latency histogram, so the error rate and p50 / p99 describe the same requests.
 */
export class WindowedRate {
  private readonly slices = Array.from({ length: SLICES }, () => ({
    slice: -1,
    requests: 0,
    errors: 0,
  }));

  constructor(private readonly now: () => number = () => performance.now()) {}

  record(error: boolean): void {
    const slice = Math.floor(this.now() / (WINDOW_MS / SLICES));
    const s = this.slices[slice % SLICES]!;
    if (s.slice !== slice) Object.assign(s, { slice, requests: 0, errors: 0 });
    s.requests++;
    if (error) s.errors++;
  }

  /** Errors / requests over the window (0 without requests). */
  rate(): number {
    const current = Math.floor(this.now() / (WINDOW_MS / SLICES));
    let requests = 0;
    let errors = 0;
    for (const s of this.slices)
      if (s.slice > current - SLICES) {
        requests += s.requests;
        errors += s.errors;
      }
    return requests === 0 ? 0 : errors / requests;
  }
}

class Series {
  readonly latency = new LatencyHistogram({ windowMs: WINDOW_MS, slices: SLICES });
  readonly outcomes = new WindowedRate();
  inFlight = 0;
  requests = 0;
  errors = 0;
  sampledRequests = 0;
  sampledErrors = 0;
  readonly history: LatencyPoint[] = [];
}

/**
 * Latency over time per gateway endpoint (`search`, `orders`, `reports`, `dispatcher`, …):
 * every response is recorded in an `@x/resilience` `LatencyHistogram` (10 s window) and in a
 * {@link WindowedRate} over the same window (the error rate), and
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
      const error = status >= 500 || status === 0;
      if (error) s.errors++;
      s.outcomes.record(error);
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
        errorRate: round4(s.outcomes.rate()),
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
      errorRate: round4(s.outcomes.rate()),
      history: s.history,
    }));
  }
}

function round4(n: number): number {
  return Math.round(n * 10_000) / 10_000;
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
