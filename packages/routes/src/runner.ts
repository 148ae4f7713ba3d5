import {
  silentLogger,
  noopMetrics,
  systemClock,
  type Clock,
  type Logger,
  type Metrics,
} from '@x/resilience';
import type { Dependency } from './dependency.js';
import { CancelledError, RouteConfigError } from './errors.js';
import type { EntryRef } from './entrypoint.js';
import { checkKeys, checkMs } from './internal/options.js';
import { stopDependencies, type DrainReport, type StopOptions } from './drainReport.js';
import type { Route } from './route.js';
import { RunnerContext } from './runnerContext.js';

/** Options of a {@link Runner}. */
export interface RunnerOptions {
  /** The contexts to run. Default: one context `'default'` holding `routes`. */
  readonly contexts?: readonly RunnerContext<Route<any, any, any, any>>[];
  /** Shortcut: routes for a single default context (with `maxWorkers`). */
  readonly routes?: readonly Route<any, any, any, any>[];
  /** `maxWorkers` of the default context. Default 10. */
  readonly maxWorkers?: number;
  /** Time source of every route (a `ManualClock` in tests). Default `systemClock`. */
  readonly clock?: Clock;
  /** Metrics sink of every route. Default `noopMetrics`. */
  readonly metrics?: Metrics;
  /** Logger of every route (pino-compatible). Default silent. */
  readonly logger?: Logger;
}

/**
 * Runs contexts of routes (≙ micro_framework's `Runner`): `start()` sets up and starts every
 * dependency once, then every entrypoint; `stop({ timeoutMs })` stops intake everywhere, hands back
 * unstarted work, waits for in-flight workers under one deadline, kills what is left, stops the
 * dependencies and returns one {@link DrainReport}; `kill()` stops at once.
 */
export class Runner {
  readonly contexts: readonly RunnerContext<Route<any, any, any, any>>[];
  private started = false;
  private stopping: Promise<DrainReport> | undefined = undefined;

  constructor(options: RunnerOptions = {}) {
    checkKeys(
      options,
      ['contexts', 'routes', 'maxWorkers', 'clock', 'metrics', 'logger'],
      'Runner',
    );
    const {
      contexts,
      routes,
      maxWorkers,
      clock = systemClock,
      metrics = noopMetrics,
      logger = silentLogger,
    } = options;
    if (contexts !== undefined && (routes !== undefined || maxWorkers !== undefined))
      throw new RouteConfigError('Runner: give either contexts or routes (+ maxWorkers), not both');
    this.contexts = contexts
      ? [...contexts]
      : [
          new RunnerContext({
            routes: routes ?? [],
            ...(maxWorkers === undefined ? {} : { maxWorkers }),
          }),
        ];
    const names = new Set<string>();
    for (const context of this.contexts) {
      if (!(context instanceof RunnerContext))
        throw new RouteConfigError('contexts must be RunnerContext instances');
      if (names.has(context.name))
        throw new RouteConfigError(`two contexts are named ${context.name}`);
      names.add(context.name);
      context.attach({ clock, metrics, logger });
      for (const route of context.routes) route.resolveEnv();
    }
  }

  /** Every route of every context. */
  get routes(): Route<any, any, any, any>[] {
    return this.contexts.flatMap(c => [...c.routes]);
  }

  private dependencies(): Set<Dependency<unknown>> {
    const deps = new Set<Dependency<unknown>>();
    for (const route of this.routes) for (const [, dep] of route.dependencyList) deps.add(dep);
    return deps;
  }

  /** Sets up and starts each dependency once (shared ones too), then starts every entrypoint. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    const deps = this.dependencies();
    for (const dep of deps) await dep.setup?.();
    for (const dep of deps) await dep.start?.();
    for (const route of this.routes) await route.startEntrypoints();
  }

  /**
   * Graceful stop under one deadline (`timeoutMs`, default 30 000 ms) for all routes. Calling it
   * again returns the same report.
   */
  stop(options: StopOptions = {}): Promise<DrainReport> {
    if (this.stopping) return this.stopping;
    const timeoutMs = checkMs(options.timeoutMs ?? 30_000, 0, 'timeoutMs');
    this.stopping = (async () => {
      const routes = this.routes;
      const clock = this.contexts[0]?.clock ?? systemClock;
      const startedAt = clock.now();
      const returned: EntryRef[] = [];
      for (const list of await Promise.all(routes.map(r => r.stopIntake()))) returned.push(...list);
      let draining = 0;
      for (const route of routes) {
        const back = route.handBack();
        returned.push(...back.returned);
        draining += back.draining;
      }
      const results = await Promise.all(
        routes.map(r => r.waitDrained(Math.max(0, timeoutMs - (clock.now() - startedAt)))),
      );
      const drained = results.every(Boolean);
      const killed: EntryRef[] = [];
      if (!drained)
        for (const route of routes)
          killed.push(
            ...route.killAll(new CancelledError(`route ${route.name}: drain timed out`, true)),
          );
      for (const route of routes) await route.closeAll(false);
      await stopDependencies(this.dependencies(), this.contexts[0]?.logger ?? silentLogger);
      return {
        returned,
        completed: draining - killed.length,
        killed,
        timedOut: !drained,
        durationMs: clock.now() - startedAt,
      };
    })();
    return this.stopping;
  }

  /** Stops at once: kills all in-flight work (settled `cancelled`), kills dependencies, closes entrypoints. */
  async kill(reason?: unknown): Promise<void> {
    for (const route of this.routes) await route.kill(reason);
    await stopDependencies(this.dependencies(), this.contexts[0]?.logger ?? silentLogger, true);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
