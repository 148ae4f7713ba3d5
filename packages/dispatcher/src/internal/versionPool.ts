import { randomBytes } from 'node:crypto';
import {
  LatencyHistogram,
  leastLoaded,
  priority,
  repeat,
  roundRobin,
  type Balancer,
  type BackoffContext,
  type Clock,
  type IBackoff,
  type Logger,
  type Metrics,
} from '@x/resilience';
import type { InstanceExit } from '../backend.js';
import type { DispatcherEvent } from '../dispatcherEvent.js';
import {
  DispatcherClosedError,
  InstanceStartError,
  InvalidConfigError,
  InvalidInstanceIdError,
  NoCapacityError,
  VersionAlreadyStartedError,
  VersionAlreadyStoppedError,
  VersionStoppedError,
} from '../errors.js';
import type { InstanceInfo } from '../types.js';
import type { NormalizedVersionSpec } from '../versionSpec.js';
import { Instance, type InstanceOwner, type ReadyKind, type UpstreamOptions } from './instance.js';
import type { Deadline } from './deadline.js';
import { waitForInstanceSlot, waitUntilReady } from './addressedInstance.js';
import { InstanceWaitQueue } from './instanceWaitQueue.js';
import { VersionScaler } from './versionScaler.js';

export type { Deadline } from './deadline.js';

/** Starts in a row that must fail before requests to a version without instances fail fast. */
const CRASH_LOOP_STARTS = 2;

/** Shared services a version pool gets from its dispatcher. */
export interface PoolServices {
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly upstream: UpstreamOptions;
  emit(event: DispatcherEvent): void;
}

/** Per-version statistics (`dispatcher.stats()`). */
export interface VersionStats {
  readonly module: string;
  readonly version: string;
  readonly scaling: 'manual' | 'basic' | 'automatic';
  readonly stopped: boolean;
  readonly instances: number;
  readonly ready: number;
  readonly starting: number;
  readonly outstanding: number;
  readonly waiting: number;
  readonly coldStarts: number;
  /** Median and p99 time spent waiting for an instance (ms) over the last minute. */
  readonly pendingLatencyP50: number;
  readonly pendingLatencyP99: number;
  /** Median and p99 time from cold start to ready (ms). */
  readonly coldStartP50: number;
  readonly coldStartP99: number;
}

/**
 * The instances of one version and the policy that starts, picks and stops them (GAE's
 * `ManualScalingModule`, `BasicScalingModule` and `AutoScalingModule` in one place).
 */
export class VersionPool implements InstanceOwner {
  readonly clock: Clock;
  readonly log: Logger;
  readonly upstream: UpstreamOptions;
  readonly instances = new Map<string, Instance>();
  /** Ready, healthy instances: what the balancer picks from. */
  private routable: Instance[] = [];
  /** Requests waiting for an instance. */
  get waiting(): number {
    return this.queue.waiting;
  }

  /** Ready, healthy instances (the scaler reads them). */
  get routableInstances(): readonly Instance[] {
    return this.routable;
  }
  private readonly balancer: Balancer<Instance>;
  /** Requests waiting for any instance of the version. */
  private readonly queue: InstanceWaitQueue;
  stopped = false;
  closed = false;
  outstanding = 0;
  private readonly scaler: VersionScaler;
  private readonly pendingLatency: LatencyHistogram;
  private readonly coldStartLatency: LatencyHistogram;
  coldStarts = 0;
  private nextIndex = 0;
  private timers: Array<{ stop: () => void }> = [];
  private readonly stopping = new Set<Promise<void>>();

  /** Keeps an instance stop in flight until it ends, for {@link close}. */
  track(stop: Promise<void>): void {
    const tracked = stop.finally(() => this.stopping.delete(tracked));
    this.stopping.add(tracked);
  }
  private readonly metricTags: Readonly<Record<string, string>>;

  constructor(
    readonly module: string,
    readonly version: string,
    readonly spec: NormalizedVersionSpec,
    private readonly services: PoolServices,
  ) {
    this.clock = services.clock;
    this.log = services.log;
    this.upstream = services.upstream;
    const scaling = spec.scaling;
    this.pendingLatency = new LatencyHistogram({ clock: this.clock });
    this.queue = new InstanceWaitQueue(this, module, version, spec, this.clock);
    this.scaler = new VersionScaler(this);
    this.coldStartLatency = new LatencyHistogram({ clock: this.clock, windowMs: 3_600_000 });
    this.metricTags = Object.freeze({ module, version });
    if (scaling.kind === 'automatic') {
      // App Engine's bin-packing: the "required" instances with the most room first, then the
      // busiest idle one, so truly idle instances stay idle and can be reaped.
      this.balancer = priority<Instance>(
        (instance, _load) => {
          const free = spec.maxConcurrentRequests - instance.inFlight;
          if (free <= 0) return null;
          return instance.required ? -free : 1_000_000 - instance.inFlight;
        },
        { clock: this.clock },
      );
    } else {
      this.balancer =
        spec.balancer === 'roundRobin'
          ? roundRobin<Instance>({ clock: this.clock })
          : leastLoaded<Instance>({ clock: this.clock });
    }
    if (scaling.kind === 'manual') {
      for (let i = 0; i < scaling.instances; i++) this.addInstance(String(i), i);
    } else if (scaling.kind === 'basic') {
      for (let i = 0; i < scaling.maxInstances; i++) this.addInstance(String(i), i);
    }
  }

  get kind(): 'manual' | 'basic' | 'automatic' {
    return this.spec.scaling.kind;
  }

  emit(event: DispatcherEvent): void {
    this.services.emit(event);
  }

  private addInstance(id: string, index: number): Instance {
    const instance = new Instance(this, id, index);
    this.instances.set(id, instance);
    return instance;
  }

  /** Starts what must run from the beginning; failures are retried with backoff, not thrown. */
  async start(): Promise<void> {
    const scaling = this.spec.scaling;
    if (scaling.kind === 'manual') {
      if (!this.stopped)
        await Promise.all([...this.instances.values()].map(i => this.launch(i, 'start')));
    } else if (scaling.kind === 'basic') {
      const idle = scaling.idleTimeoutMs;
      const interval = Math.max(10, Math.min(1_000, Math.floor(idle / 4)));
      this.timers.push(
        repeat(this.clock, interval, () => this.scaler.reapIdle(idle), this.onTimerError),
      );
    } else {
      const initial = this.scaler.decide();
      const launches: Promise<void>[] = [];
      for (let i = 0; i < initial.atLeast; i++)
        launches.push(this.launch(this.newAutoInstance(), scaling.warmup ? 'warmup' : 'none'));
      await Promise.all(launches);
      this.timers.push(
        repeat(this.clock, scaling.adjustIntervalMs, () => this.scaler.adjust(), this.onTimerError),
      );
    }
  }

  private onTimerError = (error: unknown) => {
    // an autoscaler failure is reported, never fatal (App Engine called interrupt_main())
    this.emit({ type: 'error', where: `${this.module}/${this.version} scaler`, error });
  };

  newAutoInstance(): Instance {
    let id: string;
    do id = randomBytes(8).toString('hex');
    while (this.instances.has(id));
    return this.addInstance(id, this.nextIndex++);
  }

  /** Starts `instance`; a failure schedules a restart with backoff. Never rejects. */
  launch(instance: Instance, ready: ReadyKind): Promise<void> {
    return instance.start(ready).then(
      () => {
        this.coldStarts++;
        this.coldStartLatency.record(instance.lastStartMs);
        this.services.metrics.histogram(
          'dispatcher.cold_start',
          instance.lastStartMs,
          this.metricTags,
        );
      },
      () => this.scheduleRestart(instance, 'start-failed'),
    );
  }

  // ---- InstanceOwner ---------------------------------------------------------------------

  instanceReady(instance: Instance): void {
    if (!this.instances.has(instance.id) || this.closed || this.stopped) return;
    if (!this.routable.includes(instance)) this.routable = [...this.routable, instance];
    this.gauge();
    this.queue.wake();
  }

  instanceLeft(instance: Instance): void {
    if (this.routable.includes(instance)) {
      this.routable = this.routable.filter(i => i !== instance);
      this.gauge();
    }
  }

  instanceDied(instance: Instance, _exit: InstanceExit): void {
    this.scheduleRestart(instance, 'died');
  }

  slotFreed(_instance: Instance): void {
    if (this.queue.waiting > 0) this.queue.wake();
  }

  restartUnhealthy(instance: Instance): void {
    if (this.closed || this.stopped) return;
    void instance.stop({ force: true }).then(() => this.scheduleRestart(instance, 'unhealthy'));
  }

  private scheduleRestart(instance: Instance, reason: 'start-failed' | 'died' | 'unhealthy'): void {
    if (this.closed || this.stopped || this.instances.get(instance.id) !== instance) return;
    if (instance.restartTimer) return;
    const { restart } = this.spec;
    const now = this.clock.now();
    if (instance.readyAt > 0 && now - instance.readyAt >= restart.resetAfterMs) {
      instance.restartStreak = 0;
      instance.restartBackoff = undefined;
    }
    if (instance.restartStreak >= restart.maxRestarts) {
      this.emit({ type: 'instance-gave-up', ...instance.ref(), restarts: instance.restartStreak });
      instance.state = 'failed';
      instance.nextRestartAt = undefined;
      if (this.kind === 'automatic') this.instances.delete(instance.id);
      // a basic slot goes back to "stopped": the next request that needs it tries once more
      if (this.kind === 'basic') instance.state = 'stopped';
      this.queue.wake();
      return;
    }
    const context: BackoffContext = { attempt: instance.restartStreak + 1, error: undefined };
    const backoff: IBackoff<BackoffContext> = instance.restartBackoff
      ? instance.restartBackoff.next(context)
      : restart.backoff.next(context);
    instance.restartBackoff = backoff;
    instance.restartStreak++;
    instance.restarts++;
    const delayMs = Math.max(0, backoff.duration);
    // a start that failed: the instance is crash-looping until a start succeeds
    if (reason === 'start-failed' && instance.state === 'failed') instance.state = 'crash-loop';
    instance.nextRestartAt = now + delayMs;
    this.emit({
      type: 'instance-restart-scheduled',
      ...instance.ref(),
      attempt: instance.restartStreak,
      delayMs,
      reason,
    });
    const timer = this.clock.setTimeout(() => {
      instance.restartTimer = undefined;
      instance.nextRestartAt = undefined;
      if (this.closed || this.stopped || this.instances.get(instance.id) !== instance) return;
      void this.launch(instance, this.kind === 'automatic' ? 'none' : 'start');
    }, delayMs);
    timer.unref?.();
    instance.restartTimer = timer;
  }

  // ---- picking ---------------------------------------------------------------------------

  /** Takes a slot on a routable instance without waiting, or undefined. */
  pickNow(): Instance | undefined {
    const routable = this.routable;
    if (routable.length === 0) return undefined;
    const chosen = this.balancer.pick(routable);
    if (chosen !== undefined && chosen.tryAcquire()) return chosen;
    for (let i = 0; i < routable.length; i++) if (routable[i]!.tryAcquire()) return routable[i];
    return undefined;
  }

  /**
   * A load-balanced instance holding a slot for this request (release with {@link release}).
   * Waits up to `maxPendingLatencyMs` (or the deadline) for capacity, starting instances as the
   * scaling mode allows; then NO_CAPACITY (503) or DEADLINE_EXCEEDED.
   */
  acquire(deadline: Deadline, signal: AbortSignal | undefined): Instance | Promise<Instance> {
    if (this.closed) throw new DispatcherClosedError();
    if (this.stopped) throw new VersionStoppedError(this.module, this.version);
    const instance = this.pickNow();
    if (instance !== undefined) {
      this.outstanding++;
      this.took(instance);
      return instance;
    }
    // every instance fails to start: answer at once instead of waiting maxPendingLatencyMs
    const startFailure = this.startFailure();
    if (startFailure !== undefined) throw startFailure;
    this.outstanding++;
    return this.queue.enqueue(deadline, signal).then(
      got => {
        this.took(got);
        return got;
      },
      error => {
        this.outstanding--;
        throw error;
      },
    );
  }

  /**
   * `INSTANCE_START_FAILED` when no instance is routable and every one is crash-looping (its last
   * {@link CRASH_LOOP_STARTS} starts failed) or gave up, with the last failure's message (the
   * child's last output lines). After a single failure requests still wait for the restart.
   */
  private startFailure(): InstanceStartError | undefined {
    if (this.routable.length > 0 || this.instances.size === 0) return undefined;
    let last: Instance | undefined;
    for (const instance of this.instances.values()) {
      if (instance.startFailures < CRASH_LOOP_STARTS || instance.state === 'stopped')
        return undefined;
      last = instance;
    }
    const error = last!.lastStartError;
    const retry = [...this.instances.values()]
      .map(i => i.nextRestartAt)
      .filter((at): at is number => at !== undefined);
    const next =
      retry.length > 0
        ? `next start in ${Math.max(0, Math.min(...retry) - this.clock.now())} ms`
        : 'no restart scheduled (gave up)';
    return new InstanceStartError(
      `every instance of ${this.module}/${this.version} fails to start (${next}); last failure: ${error?.message ?? 'unknown'}`,
      { cause: error, output: error?.output },
    );
  }

  private took(instance: Instance): void {
    this.balancer.start(instance);
    this.scaler.recordLoad();
  }

  /** Gives back the slot taken by {@link acquire} or {@link acquireInstance}. */
  release(instance: Instance, ok: boolean, durationMs: number): void {
    this.outstanding--;
    const duration = durationMs >= 0 ? durationMs : 0;
    this.balancer.end(instance, { ok, durationMs: duration });
    instance.release();
    const metrics = this.services.metrics;
    metrics.increment(ok ? 'dispatcher.requests' : 'dispatcher.failures', 1, this.metricTags);
    metrics.histogram('dispatcher.request.duration', duration, this.metricTags);
  }

  /** Requests are waiting: start instances as the scaling mode allows. */
  demand(): void {
    this.scaler.demand();
  }

  /**
   * A slot on one addressed instance (manual and basic scaling). Starts a stopped basic
   * instance; waits for a starting one; queues in the instance's bulkhead when it is full.
   */
  async acquireInstance(
    id: string,
    deadline: Deadline,
    signal: AbortSignal | undefined,
  ): Promise<Instance> {
    if (this.closed) throw new DispatcherClosedError();
    if (this.stopped) throw new VersionStoppedError(this.module, this.version);
    const instance = this.instances.get(id);
    if (!instance) throw new InvalidInstanceIdError(this.module, this.version, id);
    this.outstanding++;
    try {
      if (instance.state === 'stopped' && this.kind === 'basic')
        void this.launch(instance, 'start');
      const ready = instance.whenReady();
      if (ready === undefined) {
        throw new InstanceStartError(
          `instance ${id} of ${this.module}/${this.version} is ${instance.state}${instance.restartTimer ? ' (restart scheduled)' : ''}${instance.lastStartError ? `; last failure: ${instance.lastStartError.message}` : ''}`,
          { cause: instance.lastStartError },
        );
      }
      if (instance.state !== 'ready') await waitUntilReady(this, ready, deadline, signal);
      if (instance.tryAcquire()) {
        this.balancer.start(instance);
        return instance;
      }
      if (!instance.routable)
        throw new NoCapacityError(
          `instance ${id} is ${instance.healthy ? instance.state : 'unhealthy'}`,
          'instances',
          this.retryAfterMs(),
        );
      await waitForInstanceSlot(this, instance, deadline, signal);
      this.balancer.start(instance);
      return instance;
    } catch (error) {
      this.outstanding--;
      throw error;
    }
  }

  // ---- control ---------------------------------------------------------------------------

  /** Manual: the configured instance count. Basic: the maximum. */
  getNumInstances(): number {
    return this.instances.size;
  }

  /** Manual: starts or drains instances (ids stay `0…n-1`). Basic: changes the maximum. */
  async setNumInstances(count: number): Promise<void> {
    if (this.closed) throw new DispatcherClosedError();
    const scaling = this.spec.scaling;
    const max = Math.min(1000, this.spec.backend.maxInstances);
    if (!Number.isInteger(count) || count < 0 || count > max)
      throw new InvalidConfigError(
        `instances must be an integer from 0 to ${max}, got ${String(count)}`,
      );
    const current = this.instances.size;
    if (count > current) {
      const added: Instance[] = [];
      for (let i = current; i < count; i++) added.push(this.addInstance(String(i), i));
      if (scaling.kind === 'manual' && !this.stopped)
        await Promise.all(added.map(i => this.launch(i, 'start')));
    } else if (count < current) {
      const removed: Instance[] = [];
      for (let i = count; i < current; i++) {
        const instance = this.instances.get(String(i));
        if (!instance) continue;
        this.instances.delete(instance.id);
        this.instanceLeft(instance);
        removed.push(instance);
      }
      await Promise.all(removed.map(i => i.stop()));
    }
    this.gauge();
  }

  /** Drains and stops every instance; requests get VERSION_STOPPED until {@link startVersion}. */
  async stopVersion(): Promise<void> {
    if (this.stopped) throw new VersionAlreadyStoppedError(this.module, this.version);
    this.stopped = true;
    this.queue.rejectAll(() => new VersionStoppedError(this.module, this.version));
    await Promise.all([...this.instances.values()].map(i => i.stop()));
    this.gauge();
  }

  /** Starts a stopped version again (new processes, same instance ids). */
  async startVersion(): Promise<void> {
    if (this.closed) throw new DispatcherClosedError();
    if (!this.stopped) throw new VersionAlreadyStartedError(this.module, this.version);
    this.stopped = false;
    for (const instance of this.instances.values()) {
      instance.restartStreak = 0;
      instance.restartBackoff = undefined;
    }
    if (this.kind === 'manual')
      await Promise.all([...this.instances.values()].map(i => this.launch(i, 'start')));
    this.gauge();
  }

  /** Stops everything: timers, waiters, instances (children killed and reaped). */
  async close(drainTimeoutMs?: number): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const timer of this.timers) timer.stop();
    this.timers = [];
    this.scaler.stop();
    this.queue.rejectAll(() => new DispatcherClosedError());
    const stops = [...this.instances.values()].map(i =>
      i.stop(drainTimeoutMs === undefined ? {} : { drainTimeoutMs }),
    );
    await Promise.all([...stops, ...this.stopping]);
  }

  /** Ready instances now. */
  get readyCount(): number {
    return this.routable.length;
  }

  infos(): InstanceInfo[] {
    return [...this.instances.values()].map(i => i.info());
  }

  stats(): VersionStats {
    let ready = 0;
    let starting = 0;
    for (const instance of this.instances.values()) {
      if (instance.state === 'ready') ready++;
      else if (instance.state === 'starting') starting++;
    }
    return {
      module: this.module,
      version: this.version,
      scaling: this.kind,
      stopped: this.stopped,
      instances: this.instances.size,
      ready,
      starting,
      outstanding: this.outstanding,
      waiting: this.queue.waiting,
      coldStarts: this.coldStarts,
      pendingLatencyP50: this.pendingLatency.percentile(0.5),
      pendingLatencyP99: this.pendingLatency.percentile(0.99),
      coldStartP50: this.coldStartLatency.percentile(0.5),
      coldStartP99: this.coldStartLatency.percentile(0.99),
    };
  }

  /** Records how long a request waited for an instance. */
  recordPending(ms: number): void {
    this.pendingLatency.record(ms);
  }

  /** Suggested `Retry-After` in ms: the time for the queue ahead to drain, at least 1 s. */
  retryAfterMs(): number {
    const capacity = Math.max(1, this.routable.length * this.spec.maxConcurrentRequests);
    const serviceMs = this.pendingLatency.count > 0 ? this.pendingLatency.percentile(0.5) : 1_000;
    return Math.min(
      60_000,
      Math.max(1_000, Math.ceil((serviceMs * (this.queue.waiting + 1)) / capacity)),
    );
  }

  gauge(): void {
    this.services.metrics.gauge(
      'dispatcher.instances.ready',
      this.routable.length,
      this.metricTags,
    );
  }
}
