import {
  Emitter,
  timeout,
  type Clock,
  type Logger,
  type Metrics,
  type Tags,
  type TimeoutPolicy,
} from '@x/resilience';
import { RouteConfigError } from './errors.js';
import type { RouteEvent } from './routeEvent.js';
import type { RunnerContext } from './runnerContext.js';

/** A route's own clock, metrics and logger (each replaces the context's). */
export interface RouteEnvOverrides {
  clock?: Clock;
  metrics?: Metrics;
  logger?: Logger;
}

/** What {@link RouteEnv} is built from. */
export interface RouteEnvInit {
  readonly label: string;
  readonly overrides: RouteEnvOverrides;
  /** Per-attempt deadline of the target (route option `timeoutMs`). */
  readonly timeoutMs: number | undefined;
  /** Deadline of each callback run (`callbacks.timeoutMs`). */
  readonly callbackTimeoutMs: number | undefined;
  /** Binds the route to a default context when it is used before any context bound it. */
  readonly bindDefault: () => void;
}

/**
 * The state a route's parts share (worker slots, callbacks, retries): its label, the runner
 * context it is bound to, the clock, metrics and logger (the route's overrides, else the
 * context's), the metric tags, the per-attempt deadlines on that clock and the event emitter.
 */
export class RouteEnv {
  readonly label: string;
  /** Attempts, retries, callbacks and outcomes (emitted only while somebody listens). */
  readonly events = new Emitter<RouteEvent>();
  /** Per-attempt deadline (set when bound: it needs the clock). */
  timeoutPolicy: TimeoutPolicy | undefined = undefined;
  callbackTimeoutPolicy: TimeoutPolicy | undefined = undefined;
  /** False when the metrics sink declares it discards histograms (`recordsHistograms: false`). */
  histograms = true;
  private ctx: RunnerContext<any> | undefined = undefined;
  private envClock: Clock | undefined = undefined;
  private envMetrics: Metrics | undefined = undefined;
  private envLogger: Logger | undefined = undefined;
  private tags: Tags | undefined = undefined;

  constructor(private readonly init: RouteEnvInit) {
    this.label = init.label;
  }

  /** True once a context bound the route. */
  get bound(): boolean {
    return this.ctx !== undefined;
  }

  /** The runner context (a default one is bound on first use). */
  get context(): RunnerContext<any> {
    if (this.ctx === undefined) this.init.bindDefault();
    return this.ctx!;
  }

  get clock(): Clock {
    return this.envClock ?? this.resolve().clock;
  }

  get metrics(): Metrics {
    return this.envMetrics ?? this.resolve().metrics;
  }

  get logger(): Logger {
    return this.envLogger ?? this.resolve().logger;
  }

  /** `{ context, route }`. */
  get metricTags(): Tags {
    if (this.tags === undefined) this.init.bindDefault();
    return this.tags!;
  }

  /** Binds the route to `context` (once; binding it to another context throws). */
  bind(context: RunnerContext<any>): void {
    if (this.ctx !== undefined && this.ctx !== context)
      throw new RouteConfigError(
        `route ${this.label} is already bound to context ${this.ctx.name}`,
      );
    this.ctx = context;
    this.tags = Object.freeze({ context: context.name, route: this.label });
    this.resolve();
  }

  /** Re-reads clock, metrics and logger (the runner attaches them after binding). */
  resolve(): { clock: Clock; metrics: Metrics; logger: Logger } {
    const context = this.context;
    const { overrides, timeoutMs, callbackTimeoutMs } = this.init;
    const clock = (this.envClock = overrides.clock ?? context.clock);
    const metrics = (this.envMetrics = overrides.metrics ?? context.metrics);
    const logger = (this.envLogger = overrides.logger ?? context.logger);
    this.histograms = metrics.recordsHistograms !== false;
    this.timeoutPolicy =
      timeoutMs === undefined ? undefined : timeout(timeoutMs, { clock, scope: 'attempt' });
    this.callbackTimeoutPolicy =
      callbackTimeoutMs === undefined
        ? undefined
        : timeout(callbackTimeoutMs, { clock, scope: 'attempt' });
    return { clock, metrics, logger };
  }
}
