import type { Clock } from '@x/resilience';
import type { DispatcherEvent } from '../dispatcherEvent.js';
import { InvalidConfigError } from '../errors.js';
import type { NormalizedVersionSpec } from '../versionSpec.js';
import type { Instance, ReadyKind } from './instance.js';
import { PeakWindow } from './peakWindow.js';

/** The version pool state a {@link VersionScaler} reads and the few things it may do. */
export interface ScalerHost {
  readonly module: string;
  readonly version: string;
  readonly spec: NormalizedVersionSpec;
  readonly clock: Clock;
  readonly instances: Map<string, Instance>;
  /** Ready, healthy instances. */
  readonly routableInstances: readonly Instance[];
  readonly outstanding: number;
  readonly waiting: number;
  readonly closed: boolean;
  readonly stopped: boolean;
  launch(instance: Instance, ready: ReadyKind): Promise<void>;
  newAutoInstance(): Instance;
  instanceLeft(instance: Instance): void;
  /** Keeps an instance stop in flight for the pool's close. */
  track(stop: Promise<void>): void;
  emit(event: DispatcherEvent): void;
  gauge(): void;
}

/**
 * When a version starts and stops instances: cold starts for waiting requests (basic and
 * automatic), the automatic autoscaler tick (`AutoscalePolicy` over the peak concurrency window,
 * App Engine's bin-packing `required` marks, one quit per `minMsBetweenQuits`) and basic scaling's
 * idle reaper.
 */
export class VersionScaler {
  private readonly peak: PeakWindow;
  private coldStartTimer: ReturnType<Clock['setTimeout']> | undefined;
  private lastQuitAt = -Infinity;

  constructor(private readonly host: ScalerHost) {
    const scaling = host.spec.scaling;
    this.peak = new PeakWindow(scaling.kind === 'automatic' ? scaling.windowMs : 60_000);
  }

  /** Records the concurrency now (automatic scaling's peak window). */
  recordLoad(): void {
    if (this.host.spec.scaling.kind === 'automatic')
      this.peak.record(this.host.clock.now(), this.host.outstanding);
  }

  /** Cancels a pending cold start. */
  stop(): void {
    if (this.coldStartTimer) this.host.clock.clearTimeout(this.coldStartTimer);
    this.coldStartTimer = undefined;
  }

  private starting(): number {
    let n = 0;
    for (const instance of this.host.instances.values()) if (instance.state === 'starting') n++;
    return n;
  }

  private active(): number {
    let n = 0;
    for (const instance of this.host.instances.values())
      if (instance.state === 'starting' || instance.state === 'ready') n++;
    return n;
  }

  /** Requests are waiting: start instances as the scaling mode allows. */
  demand(): void {
    const scaling = this.host.spec.scaling;
    if (scaling.kind === 'manual') return;
    const per = this.host.spec.maxConcurrentRequests;
    const need = () => Math.ceil(this.host.waiting / per) - this.starting();
    if (scaling.kind === 'basic') {
      let missing = need();
      for (const instance of this.host.instances.values()) {
        if (missing <= 0) break;
        if (instance.state === 'stopped' && !instance.restartTimer) {
          missing--;
          void this.host.launch(instance, 'start');
        }
      }
      return;
    }
    // automatic: start at once when nothing runs; otherwise give busy instances
    // minPendingLatencyMs to free up before a cold start (App Engine's min_pending_latency)
    const coldStart = () => {
      this.coldStartTimer = undefined;
      if (this.host.closed || this.host.stopped || this.host.waiting === 0) return;
      const room = scaling.maxInstances - this.active();
      const count = Math.min(room, Math.max(need(), 0));
      for (let i = 0; i < count; i++) void this.host.launch(this.host.newAutoInstance(), 'none');
      if (count > 0)
        this.emitScale(this.active() - count, this.active(), 'cold start for waiting requests');
    };
    if (this.active() === 0) {
      coldStart();
    } else if (!this.coldStartTimer) {
      this.coldStartTimer = this.host.clock.setTimeout(coldStart, scaling.minPendingLatencyMs);
      this.coldStartTimer.unref?.();
    }
  }

  decide() {
    const scaling = this.host.spec.scaling;
    if (scaling.kind !== 'automatic') throw new InvalidConfigError('not an automatic version');
    const now = this.host.clock.now();
    this.peak.record(now, this.host.outstanding);
    return scaling.policy.decide({
      now,
      peakConcurrency: this.peak.peak(now),
      outstanding: this.host.outstanding,
      waiting: this.host.waiting,
      active: this.active(),
      maxConcurrentRequests: this.host.spec.maxConcurrentRequests,
      minInstances: scaling.minInstances,
      maxInstances: scaling.maxInstances,
      minIdleInstances: scaling.minIdleInstances,
      maxIdleInstances: scaling.maxIdleInstances,
      scaleToZero: scaling.scaleToZero,
    });
  }

  /** One autoscaler tick. */
  adjust(): void {
    const scaling = this.host.spec.scaling;
    if (scaling.kind !== 'automatic' || this.host.closed || this.host.stopped) return;
    const decision = this.decide();
    const atLeast = Math.max(
      scaling.minInstances,
      Math.min(scaling.maxInstances, decision.atLeast),
    );
    const atMost = Math.max(atLeast, Math.min(scaling.maxInstances, decision.atMost));
    // mark the busiest `required` instances as required (bin-packing target)
    const byLoad = [...this.host.routableInstances].sort((a, b) => b.inFlight - a.inFlight);
    byLoad.forEach((instance, i) => (instance.required = i < decision.required));
    const active = this.active();
    if (active < atLeast) {
      const add = atLeast - active;
      for (let i = 0; i < add; i++)
        void this.host.launch(this.host.newAutoInstance(), scaling.warmup ? 'warmup' : 'none');
      this.emitScale(active, atLeast, decision.reason);
      return;
    }
    const now = this.host.clock.now();
    if (active > atMost && now - this.lastQuitAt >= scaling.minMsBetweenQuits) {
      let victim: Instance | undefined;
      for (const instance of this.host.instances.values()) {
        if (
          instance.required ||
          instance.inFlight > 0 ||
          instance.background > 0 ||
          instance.bulkhead.queued > 0
        )
          continue;
        if (
          instance.state !== 'ready' &&
          instance.state !== 'failed' &&
          instance.state !== 'crash-loop'
        )
          continue;
        if (!victim || instance.lastActive < victim.lastActive) victim = instance;
      }
      if (victim) {
        this.lastQuitAt = now;
        this.retire(victim);
        this.emitScale(active, active - 1, decision.reason);
      }
    }
  }

  private emitScale(from: number, to: number, reason: string): void {
    this.host.emit({
      type: 'scale',
      module: this.host.module,
      version: this.host.version,
      from,
      to,
      reason,
    });
    this.host.gauge();
  }

  /** Stops an automatic instance for good and forgets it. */
  private retire(instance: Instance): void {
    this.host.instanceLeft(instance);
    this.host.track(
      instance.stop().finally(() => {
        if (this.host.instances.get(instance.id) === instance)
          this.host.instances.delete(instance.id);
      }),
    );
  }

  /** Basic scaling: stops instances idle for `idleTimeoutMs`. */
  reapIdle(idleTimeoutMs: number): void {
    if (this.host.closed || this.host.stopped) return;
    const now = this.host.clock.now();
    for (const instance of this.host.instances.values()) {
      if (instance.state !== 'ready') continue;
      if (instance.inFlight > 0 || instance.background > 0 || instance.bulkhead.queued > 0)
        continue;
      if (now - instance.lastActive < idleTimeoutMs) continue;
      this.host.track(instance.stop());
    }
  }
}
