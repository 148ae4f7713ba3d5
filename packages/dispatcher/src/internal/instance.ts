import { Client, Pool } from 'undici';
import {
  Bulkhead,
  type BackoffContext,
  type Clock,
  type IBackoff,
  type Logger,
  timeoutSignal,
  withTimeout,
} from '@x/resilience';
import type { InstanceContext, InstanceExit, RuntimeProxy } from '../backend.js';
import type { DispatcherEvent } from '../dispatcherEvent.js';
import { InstanceStartError } from '../errors.js';
import type { InstanceInfo, InstanceState } from '../types.js';
import type { NormalizedVersionSpec } from '../versionSpec.js';

/** undici pool settings for instance origins. */
export interface UpstreamOptions {
  /** Connections per instance origin. Default: the instance's `maxConcurrentRequests`. */
  readonly connections?: number;
  /** Requests in flight per upstream connection (undici pipelining). Default 1. */
  readonly pipelining?: number;
  readonly keepAliveTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
}

/** What an instance needs from its version pool. */
export interface InstanceOwner {
  readonly module: string;
  readonly version: string;
  readonly clock: Clock;
  readonly log: Logger;
  readonly spec: NormalizedVersionSpec;
  readonly upstream: UpstreamOptions;
  emit(event: DispatcherEvent): void;
  instanceReady(instance: Instance): void;
  instanceLeft(instance: Instance): void;
  instanceDied(instance: Instance, exit: InstanceExit): void;
  slotFreed(instance: Instance): void;
  restartUnhealthy(instance: Instance): void;
}

/** How an instance becomes ready: `/_ah/start`, `/_ah/warmup`, or nothing. */
export type ReadyKind = 'start' | 'warmup' | 'none';

/**
 * One instance: its runtime, its request slots (a {@link Bulkhead}), its background slots, its
 * undici pool, health and lifecycle. The version pool decides when it starts and stops.
 */
export class Instance {
  state: InstanceState = 'stopped';
  readonly bulkhead: Bulkhead;
  readonly context: InstanceContext;
  runtime: RuntimeProxy | undefined;
  /** undici pool to the instance origin (out-of-process instances). */
  pool: Pool | undefined;
  /**
   * With upstream pipelining: a connection of its own for lifecycle requests and health probes,
   * which must never wait behind proxied requests pipelined on the pool's connections.
   */
  private control: Client | undefined;
  background = 0;
  healthy = true;
  restarts = 0;
  /** Restarts in a row without `resetAfterMs` of uptime. */
  restartStreak = 0;
  /** Backoff state of the current restart streak. */
  restartBackoff: IBackoff<BackoffContext> | undefined;
  served = 0;
  lastActive: number;
  readyAt = 0;
  /** Duration of the last start (cold start), ms. */
  lastStartMs = 0;
  /** Set by the autoscaler: part of the capacity the load requires. */
  required = false;
  /** Pending restart timer. */
  restartTimer: ReturnType<Clock['setTimeout']> | undefined;
  /** Clock time of the pending restart. */
  nextRestartAt: number | undefined;
  /** Starts that failed in a row (reset once it is ready). */
  startFailures = 0;
  /** Why the last start failed (kept until a start succeeds). */
  lastStartError: InstanceStartError | undefined;
  /** Why it is out of rotation, when it is unhealthy. */
  unhealthyReason: string | undefined;
  /** `module/version/instance`: the `x-served-by` header of its answers. */
  readonly servedBy: string;
  /** Requests in a row it did not answer by their deadline (passive ejection). */
  private consecutiveTimeouts = 0;
  private generation = 0;
  private startPromise: Promise<void> | undefined;
  private stopPromise: Promise<void> | undefined;
  private drained: (() => void) | undefined;
  private health: { stop: () => void } | undefined;
  private healthFailures = 0;
  private healthSuccesses = 0;
  private lifeController: AbortController | undefined;

  constructor(
    readonly owner: InstanceOwner,
    readonly id: string,
    readonly index: number,
  ) {
    const { spec, clock } = owner;
    this.bulkhead = new Bulkhead({
      limit: spec.maxConcurrentRequests,
      queue: spec.maxQueuedRequests,
      queueTimeoutMs: spec.maxPendingLatencyMs,
      key: `${owner.module}/${owner.version}/${id}`,
      clock,
    });
    this.lastActive = clock.now();
    this.servedBy = `${owner.module}/${owner.version}/${id}`;
    const log =
      owner.log.child?.({ module: owner.module, version: owner.version, instance: id }) ??
      owner.log;
    this.context = Object.freeze({
      module: owner.module,
      version: owner.version,
      instance: id,
      index,
      log,
    });
  }

  /** True when it can take a new request now (ready, healthy, a free slot): takes the slot. */
  tryAcquire(): boolean {
    return this.state === 'ready' && this.healthy && this.bulkhead.tryAcquire();
  }

  /** Routable: ready and healthy. */
  get routable(): boolean {
    return this.state === 'ready' && this.healthy;
  }

  get inFlight(): number {
    return this.bulkhead.running;
  }

  /** Gives a request slot back (to the first request queued on this instance, if any). */
  release(): void {
    this.bulkhead.release();
    this.afterRelease();
  }

  /** Bookkeeping once a slot is free again. */
  private afterRelease(): void {
    this.served++;
    this.lastActive = this.owner.clock.now();
    if (this.state === 'draining') this.checkDrained();
    else this.owner.slotFreed(this);
  }

  /** Reserves a background slot; false when all `maxBackgroundThreads` are taken. */
  reserveBackground(): boolean {
    if (this.background >= this.owner.spec.maxBackgroundThreads) return false;
    this.background++;
    return true;
  }

  releaseBackground(): void {
    this.background--;
    this.lastActive = this.owner.clock.now();
    if (this.state === 'draining') this.checkDrained();
  }

  /** Resolves when the instance is ready (starting it if stopped); rejects if the start fails. */
  start(ready: ReadyKind): Promise<void> {
    if (this.state === 'ready') return Promise.resolve();
    if (this.state === 'starting' && this.startPromise) return this.startPromise;
    if (this.state === 'draining')
      return Promise.reject(new InstanceStartError(`instance ${this.id} is stopping`));
    const promise = this.doStart(ready);
    this.startPromise = promise;
    promise.catch(() => {}); // observed by the callers that care
    return promise;
  }

  /** Resolves once a running or starting instance is ready (without starting a stopped one). */
  whenReady(): Promise<void> | undefined {
    if (this.state === 'ready') return Promise.resolve();
    if (this.state === 'starting') return this.startPromise;
    return undefined;
  }

  private async doStart(ready: ReadyKind): Promise<void> {
    const { owner } = this;
    const { spec, clock } = owner;
    const generation = ++this.generation;
    const startedAt = clock.now();
    this.state = 'starting';
    this.healthy = true;
    this.unhealthyReason = undefined;
    this.consecutiveTimeouts = 0;
    this.healthFailures = 0;
    this.healthSuccesses = 0;
    const life = (this.lifeController = new AbortController());
    const runtime = spec.backend.create(this.context);
    this.runtime = runtime;
    runtime.onExit(exit => {
      if (generation !== this.generation) return;
      if (this.state === 'ready') this.died(exit);
      else if (this.state === 'draining') this.drained?.(); // stopping anyway: stop waiting
    });
    owner.emit({ type: 'instance-starting', ...this.ref(), pid: undefined });
    try {
      await runtime.start(life.signal);
      if (runtime.origin !== undefined) {
        this.pool = new Pool(runtime.origin, {
          // one connection more than requests can take: health probes never queue behind them
          connections:
            owner.upstream.connections ??
            spec.maxConcurrentRequests + spec.maxBackgroundThreads + 1,
          pipelining: owner.upstream.pipelining ?? 1,
          keepAliveTimeout: owner.upstream.keepAliveTimeoutMs,
          headersTimeout: owner.upstream.headersTimeoutMs,
          bodyTimeout: owner.upstream.bodyTimeoutMs,
        });
        if ((owner.upstream.pipelining ?? 1) > 1)
          this.control = new Client(runtime.origin, {
            pipelining: 1,
            keepAliveTimeout: owner.upstream.keepAliveTimeoutMs,
            headersTimeout: owner.upstream.headersTimeoutMs,
            bodyTimeout: owner.upstream.bodyTimeoutMs,
          });
      }
      if (ready !== 'none') await this.readyRequest(ready);
      if (generation !== this.generation || this.state !== 'starting')
        throw new InstanceStartError(`instance ${this.id} was stopped while starting`);
    } catch (error) {
      if (generation === this.generation) {
        this.state = 'failed';
        await this.teardown(true);
      }
      const wrapped =
        error instanceof InstanceStartError
          ? error
          : new InstanceStartError(
              `instance ${owner.module}/${owner.version}/${this.id} failed to start: ${(error as Error)?.message ?? String(error)}`,
              { cause: error },
            );
      this.startFailures++;
      this.lastStartError = wrapped;
      owner.emit({ type: 'instance-start-failed', ...this.ref(), error: wrapped });
      throw wrapped;
    }
    this.startFailures = 0;
    this.lastStartError = undefined;
    this.state = 'ready';
    this.readyAt = clock.now();
    this.lastStartMs = this.readyAt - startedAt;
    this.lastActive = this.readyAt;
    this.startHealthChecks();
    owner.emit({
      type: 'instance-ready',
      ...this.ref(),
      pid: runtime.pid,
      port: runtime.port,
      startMs: this.lastStartMs,
    });
    owner.instanceReady(this);
  }

  private async readyRequest(kind: 'start' | 'warmup'): Promise<void> {
    const { spec, clock } = this.owner;
    const hook = kind === 'start' ? spec.lifecycle.onStart : spec.lifecycle.onWarmup;
    const timeoutMs = spec.lifecycle.readyTimeoutMs;
    const timedOut = () =>
      new InstanceStartError(
        `/_ah/${kind} of instance ${this.id} took longer than ${timeoutMs} ms`,
      );
    if (hook)
      await withTimeout(
        clock,
        Promise.resolve().then(() => hook(this.context)),
        timeoutMs,
        timedOut,
      );
    if (!this.pool || !spec.backend.lifecycleRequests) return;
    const status = await this.lifecycleRequest(`/_ah/${kind}`, timeoutMs, timedOut);
    // 404 is fine: the app has no handler for it (App Engine's rule)
    if (status >= 500)
      throw new InstanceStartError(`/_ah/${kind} of instance ${this.id} answered ${status}`);
  }

  /** GET `path` on the instance; resolves with the status. */
  async lifecycleRequest(path: string, timeoutMs: number, reason: () => unknown): Promise<number> {
    const pool = this.control ?? this.pool;
    if (!this.pool || !pool) return 200;
    const { signal, clear } = timeoutSignal(this.owner.clock, timeoutMs, reason);
    try {
      const response = await pool.request({
        method: 'GET',
        path,
        headers: { 'x-appengine-fake-is-admin': '1', 'x-request-kind': 'lifecycle' },
        signal,
      });
      await response.body.dump({ limit: 65_536 }).catch(() => {});
      return response.statusCode;
    } finally {
      clear();
    }
  }

  /**
   * Drains (waits for running requests, ending as soon as they are done, at most
   * `drainTimeoutMs`), sends `/_ah/stop` (or calls `onStop`), then stops the runtime and closes
   * the pool. Idempotent.
   */
  stop(options: { drainTimeoutMs?: number; force?: boolean } = {}): Promise<void> {
    if (this.stopPromise) return this.stopPromise;
    const promise = this.doStop(options).finally(() => {
      this.stopPromise = undefined;
    });
    this.stopPromise = promise;
    return promise;
  }

  private async doStop(options: { drainTimeoutMs?: number; force?: boolean }): Promise<void> {
    const { owner } = this;
    const { spec, clock } = owner;
    if (this.restartTimer) {
      clock.clearTimeout(this.restartTimer);
      this.restartTimer = undefined;
    }
    if (this.state === 'stopped' || this.state === 'failed' || this.state === 'crash-loop') {
      this.state = 'stopped';
      this.generation++;
      await this.teardown(true);
      return;
    }
    const wasStarting = this.state === 'starting';
    this.state = 'draining';
    owner.instanceLeft(this);
    owner.emit({ type: 'instance-stopping', ...this.ref(), pid: this.runtime?.pid });
    this.stopHealthChecks();
    if (wasStarting) {
      this.generation++;
      this.lifeController?.abort(
        new InstanceStartError(`instance ${this.id} stopped while starting`),
      );
      await this.teardown(true);
      this.state = 'stopped';
      owner.emit({ type: 'instance-stopped', ...this.ref(), pid: undefined });
      return;
    }
    const drainMs = options.force ? 0 : (options.drainTimeoutMs ?? spec.lifecycle.drainTimeoutMs);
    if (!this.isIdle() && drainMs > 0) {
      await new Promise<void>(resolve => {
        const timer = clock.setTimeout(() => {
          this.drained = undefined;
          resolve();
        }, drainMs);
        timer.unref?.();
        this.drained = () => {
          this.drained = undefined;
          clock.clearTimeout(timer);
          resolve();
        };
      });
    }
    if (!options.force) {
      try {
        const timeoutMs = spec.lifecycle.stopTimeoutMs;
        const timedOut = () => new Error(`/_ah/stop took longer than ${timeoutMs} ms`);
        if (spec.lifecycle.onStop)
          await withTimeout(
            clock,
            Promise.resolve().then(() => spec.lifecycle.onStop!(this.context)),
            timeoutMs,
            timedOut,
          );
        if (spec.backend.lifecycleRequests && this.pool)
          await this.lifecycleRequest('/_ah/stop', timeoutMs, timedOut);
      } catch (error) {
        // a child that already exited (Ctrl-C reaches the whole process group) refuses the
        // connection: nothing to report; anything else is one line, not a stack
        const gone = /ECONNREFUSED|ECONNRESET/.test(
          `${(error as { code?: unknown })?.code} ${(error as { cause?: { code?: unknown } })?.cause?.code} ${(error as Error)?.message}`,
        );
        owner.log[gone ? 'debug' : 'warn'](
          { ...this.ref(), reason: (error as Error)?.message ?? String(error) },
          'stop request failed',
        );
      }
    }
    this.generation++;
    const pid = this.runtime?.pid;
    await this.teardown(!!options.force);
    this.state = 'stopped';
    owner.emit({ type: 'instance-stopped', ...this.ref(), pid });
  }

  private isIdle(): boolean {
    return this.bulkhead.running === 0 && this.bulkhead.queued === 0 && this.background === 0;
  }

  private checkDrained(): void {
    if (this.drained && this.isIdle()) this.drained();
  }

  /** Stops the runtime (SIGTERM/SIGKILL for processes) and destroys the pool. */
  private async teardown(force: boolean): Promise<void> {
    this.stopHealthChecks();
    const runtime = this.runtime;
    const pool = this.pool;
    const control = this.control;
    this.pool = this.control = undefined;
    if (pool) await pool.destroy().catch(() => {});
    if (control) await control.destroy().catch(() => {});
    if (runtime) {
      try {
        await runtime.stop(force);
      } catch (error) {
        this.owner.log.warn({ err: error, instance: this.id }, 'runtime stop failed');
      }
    }
  }

  /** The runtime ended on its own. */
  private died(exit: InstanceExit): void {
    const pid = this.runtime?.pid;
    this.generation++;
    this.state = 'failed';
    this.stopHealthChecks();
    this.owner.emit({
      type: 'instance-died',
      ...this.ref(),
      pid,
      code: exit.code,
      signal: exit.signal,
    });
    const pool = this.pool;
    const control = this.control;
    this.pool = this.control = undefined;
    pool?.destroy().catch(() => {});
    control?.destroy().catch(() => {});
    this.owner.instanceLeft(this);
    this.owner.instanceDied(this, exit);
  }

  /**
   * Probes every `intervalMs`, counted from the start of the previous probe (a probe that times
   * out does not push the next one back by its timeout), never two at once.
   */
  private startHealthChecks(): void {
    const check = this.owner.spec.healthCheck;
    if (!check) return;
    const clock = this.owner.clock;
    let stopped = false;
    let timer: ReturnType<Clock['setTimeout']> | undefined;
    const schedule = (delayMs: number) => {
      if (stopped) return;
      timer = clock.setTimeout(run, delayMs);
      timer.unref?.();
    };
    const run = () => {
      timer = undefined;
      const started = clock.now();
      this.probe().then(
        () => schedule(Math.max(0, check.intervalMs - (clock.now() - started))),
        (error: unknown) => {
          this.owner.emit({ type: 'error', where: 'health check', error });
          schedule(check.intervalMs);
        },
      );
    };
    schedule(check.intervalMs);
    this.health = {
      stop: () => {
        stopped = true;
        if (timer !== undefined) clock.clearTimeout(timer);
      },
    };
  }

  private stopHealthChecks(): void {
    this.health?.stop();
    this.health = undefined;
  }

  private async probe(): Promise<void> {
    const check = this.owner.spec.healthCheck!;
    if (this.state !== 'ready') return;
    const generation = this.generation;
    let ok: boolean;
    let reason = 'the health check failed';
    try {
      if (check.check) {
        const { signal, clear } = timeoutSignal(
          this.owner.clock,
          check.timeoutMs,
          () => new Error('health check timed out'),
        );
        try {
          ok =
            (await withTimeout(
              this.owner.clock,
              Promise.resolve().then(() => check.check!(this.context, signal)),
              check.timeoutMs,
              () => new Error('health check timed out'),
            )) === true;
        } finally {
          clear();
        }
      } else {
        const status = await this.lifecycleRequest(
          check.path,
          check.timeoutMs,
          () => new Error('health check timed out'),
        );
        ok = status >= 200 && status < 400;
        if (!ok) reason = `GET ${check.path} answered ${status}`;
      }
    } catch (error) {
      ok = false;
      reason = `health check failed: ${(error as Error)?.message ?? String(error)}`;
    }
    if (generation !== this.generation || this.state !== 'ready') return;
    if (ok) {
      this.healthFailures = 0;
      this.healthSuccesses++;
      if (!this.healthy && this.healthSuccesses >= check.healthyThreshold) {
        this.healthy = true;
        this.unhealthyReason = undefined;
        this.consecutiveTimeouts = 0;
        this.owner.emit({ type: 'instance-healthy', ...this.ref() });
        this.owner.instanceReady(this);
      }
    } else {
      this.healthSuccesses = 0;
      this.healthFailures++;
      if (this.healthy && this.healthFailures >= check.unhealthyThreshold)
        this.eject(`${reason} (${this.healthFailures} in a row)`);
      if (this.healthFailures >= check.restartThreshold) {
        this.healthFailures = 0;
        this.owner.restartUnhealthy(this);
      }
    }
  }

  /** Takes it out of rotation until `healthyThreshold` probes pass. */
  private eject(reason: string): void {
    this.healthy = false;
    this.healthSuccesses = 0;
    this.unhealthyReason = reason;
    this.owner.emit({ type: 'instance-unhealthy', ...this.ref(), reason });
    this.owner.instanceLeft(this);
  }

  /**
   * A request was not answered by its deadline. With health checks on, `ejectAfterTimeouts` in a
   * row take the instance out of rotation at once (passive ejection); the probes bring it back or
   * restart it.
   */
  requestTimedOut(): void {
    this.consecutiveTimeouts++;
    const check = this.owner.spec.healthCheck;
    if (
      check !== undefined &&
      this.healthy &&
      this.state === 'ready' &&
      this.consecutiveTimeouts >= check.ejectAfterTimeouts
    )
      this.eject(`${this.consecutiveTimeouts} requests in a row timed out`);
  }

  /** The instance answered a request (its response head arrived). */
  answered(): void {
    if (this.consecutiveTimeouts !== 0) this.consecutiveTimeouts = 0;
  }

  ref(): { module: string; version: string; instance: string } {
    return { module: this.owner.module, version: this.owner.version, instance: this.id };
  }

  info(): InstanceInfo {
    const running =
      this.state === 'starting' || this.state === 'ready' || this.state === 'draining';
    return {
      module: this.owner.module,
      version: this.owner.version,
      id: this.id,
      state: this.state,
      pid: running ? this.runtime?.pid : undefined,
      origin: running ? this.runtime?.origin : undefined,
      port: running ? this.runtime?.port : undefined,
      inFlight: this.bulkhead.running,
      queued: this.bulkhead.queued,
      background: this.background,
      healthy: this.healthy,
      health:
        this.owner.spec.healthCheck === undefined
          ? 'unchecked'
          : this.healthy
            ? 'healthy'
            : 'unhealthy',
      unhealthyReason: this.unhealthyReason,
      restarts: this.restarts,
      served: this.served,
      startFailures: this.startFailures,
      lastError: this.lastStartError?.message,
      nextRestartAt: this.nextRestartAt,
    };
  }
}
