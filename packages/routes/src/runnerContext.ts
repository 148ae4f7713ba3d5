import {
  Bulkhead,
  noopMetrics,
  silentLogger,
  systemClock,
  type Clock,
  type Logger,
  type Metrics,
} from '@x/resilience';
import { RouteConfigError } from './errors.js';
import { checkInt, checkKeys } from './internal/options.js';

/** What a context holds: a route, which it binds to itself (`Route` is one). */
export interface ContextRoute {
  bind(context: RunnerContext<any>): void;
}

/** Options of a {@link RunnerContext}. */
export interface RunnerContextOptions<R extends ContextRoute = ContextRoute> {
  /** Metric label `context`. Default `'default'`. */
  readonly name?: string;
  /** Routes run in this context (each route belongs to one context). Default none. */
  readonly routes?: readonly R[];
  /** Worker budget shared by the routes (≙ `MAX_WORKERS`). Default 10 (nameko's default). */
  readonly maxWorkers?: number;
  /** Messages that may wait for a worker slot; beyond it they fail `BULKHEAD_FULL` (not terminal). Default 1000. */
  readonly maxQueued?: number;
  /** Defaults: the runner's, else `systemClock`, `noopMetrics`, `silentLogger`. */
  readonly clock?: Clock;
  readonly metrics?: Metrics;
  readonly logger?: Logger;
}

/** What a context inherits from its runner. */
export interface RunnerEnv {
  readonly clock: Clock;
  readonly metrics: Metrics;
  readonly logger: Logger;
}

/**
 * A group of routes sharing one worker budget (≙ micro_framework's `RunnerContext`): at most
 * `maxWorkers` workers run at once across its routes, `maxQueued` more wait (FIFO, they leave on
 * abort), and each route may have a lower `concurrency` of its own.
 */
export class RunnerContext<R extends ContextRoute = ContextRoute> {
  readonly name: string;
  readonly maxWorkers: number;
  readonly maxQueued: number;
  readonly routes: readonly R[];
  private env: RunnerEnv | undefined = undefined;
  private readonly own: Partial<RunnerEnv>;
  private pool: Bulkhead | undefined = undefined;

  constructor(options: RunnerContextOptions<R> = {}) {
    checkKeys(
      options,
      ['name', 'routes', 'maxWorkers', 'maxQueued', 'clock', 'metrics', 'logger'],
      'RunnerContext',
    );
    const { name = 'default', routes = [], maxWorkers = 10, maxQueued = 1000 } = options;
    if (typeof name !== 'string' || name === '')
      throw new RouteConfigError('context name must be a non-empty string');
    this.name = name;
    this.maxWorkers = checkInt(maxWorkers, 1, 'maxWorkers');
    this.maxQueued = checkInt(maxQueued, 0, 'maxQueued', true);
    this.own = {};
    if (options.clock !== undefined) (this.own as { clock: Clock }).clock = options.clock;
    if (options.metrics !== undefined) (this.own as { metrics: Metrics }).metrics = options.metrics;
    if (options.logger !== undefined) (this.own as { logger: Logger }).logger = options.logger;
    if (!Array.isArray(routes)) throw new RouteConfigError('routes must be an array');
    this.routes = [...routes];
    for (const route of this.routes) route.bind(this);
  }

  /** @internal Called by the runner. */
  attach(env: RunnerEnv): void {
    this.env = env;
  }

  get clock(): Clock {
    return this.own.clock ?? this.env?.clock ?? systemClock;
  }

  get metrics(): Metrics {
    return this.own.metrics ?? this.env?.metrics ?? noopMetrics;
  }

  get logger(): Logger {
    return this.own.logger ?? this.env?.logger ?? silentLogger;
  }

  /** The shared worker budget. */
  get budget(): Bulkhead {
    return (this.pool ??= new Bulkhead({
      limit: this.maxWorkers,
      queue: this.maxQueued,
      key: this.name,
      clock: this.clock,
    }));
  }

  /** Worker slots free now. */
  get available(): number {
    return this.maxWorkers - (this.pool?.running ?? 0);
  }

  /** @internal A per-route limit queued as deep as the context's. */
  newLimiter(limit: number, key: string): Bulkhead {
    return new Bulkhead({ limit, queue: this.maxQueued, key, clock: this.clock });
  }
}
