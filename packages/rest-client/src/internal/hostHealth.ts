import { outlierDetection, type Clock, type Logger } from '@x/resilience';
import type { RestClientError } from '../errors.js';
import type { RestClientEvent } from '../events.js';
import type { ResolvedHealth } from '../passiveHealth.js';
import type { HostLoad } from './hostLoad.js';
import type { HostPool } from './hostPool.js';

/** What {@link HostHealth} needs from the client it watches (handed in, not imported). */
export interface HostHealthDeps {
  readonly clock: Clock;
  /** Reads the client's (cached) clock. */
  now(): number;
  /** Number of hosts now (the ejection cap is a share of them). */
  hostCount(): number;
  /** True once the client is closed. */
  closed(): boolean;
  emit(event: RestClientEvent): void;
  /** Counts an ejection in the metrics. */
  ejected(host: HostPool): void;
  readonly logger: Logger;
  /** The client's per-host load (probes count in it). */
  readonly load: HostLoad;
  /** Sends an active probe to `host` (no load or health bookkeeping); resolves with its status. */
  sendProbe(host: HostPool, probe: Exclude<ResolvedHealth['probe'], 'request'>): Promise<number>;
}

/**
 * Passive health of the hosts of one client: `@x/resilience`'s outlier detection decides
 * ejections (streak, cap, growing ejection time); this adds the probation (`probing`) state,
 * request or active probes, events and logs. State lives on each `HostPool`.
 */
export class HostHealth {
  private readonly outliers;

  constructor(
    readonly config: ResolvedHealth,
    private readonly deps: HostHealthDeps,
  ) {
    this.outliers = outlierDetection<HostPool>({
      consecutiveFailures: config.consecutiveFailures,
      baseEjectionMs: config.baseEjectionMs,
      maxEjectionMs: config.maxEjectionMs,
      maxEjectedPercent: config.maxEjectedPercent,
    });
  }

  /** Hosts ejected or on probation. */
  get ejectedCount(): number {
    return this.outliers.ejectedCount;
  }

  /** True when a host may take a request now; moves an expired ejection to probation. */
  eligible(host: HostPool): boolean {
    switch (host.state) {
      case 'healthy':
        return true;
      case 'ejected':
        if (this.config.probe === 'request' && this.deps.now() >= host.ejectedUntil) {
          host.state = 'probing';
          return !host.probeInFlight;
        }
        return false;
      case 'probing':
        return !host.probeInFlight && this.config.probe === 'request';
    }
  }

  /** The outcome of a try that counts for health (`ok` false: a failure, already counted on `host`). */
  record(host: HostPool, ok: boolean, failure: RestClientError | undefined, now: number): void {
    if (ok) {
      if (host.state === 'probing' && this.config.probe === 'request')
        this.readmit(host, 'request', now);
      else if (host.state === 'healthy') this.outliers.succeeded(host, now);
      return;
    }
    if (host.state === 'probing') {
      if (this.config.probe === 'request') {
        this.deps.emit({ type: 'probeFailed', host: host.origin, error: failure });
        this.eject(host, failure, now);
      }
      return;
    }
    if (host.state === 'healthy' && this.outliers.shouldEject(host, this.deps.hostCount()))
      this.eject(host, failure, now);
  }

  /** A try that said nothing about health ended: a request probe on probation is released. */
  neutral(host: HostPool): void {
    if (host.state === 'probing' && host.probeInFlight && this.config.probe === 'request')
      host.probeInFlight = false;
  }

  /** The host moved to a new address: an ejected host is probed there at once. */
  moved(host: HostPool): void {
    if (host.state !== 'ejected') return;
    host.ejectedUntil = this.deps.now();
    if (this.config.probe !== 'request') this.scheduleProbe(host, 0);
  }

  /** The host was removed. */
  forget(host: HostPool): void {
    this.outliers.forget(host);
    this.clearProbe(host);
  }

  /** The client closes: no more probes. */
  stop(hosts: readonly HostPool[]): void {
    for (const host of hosts) this.clearProbe(host);
  }

  private eject(host: HostPool, error: RestClientError | undefined, now: number): void {
    const ejectionMs = this.outliers.eject(host, now);
    host.state = 'ejected';
    host.probeInFlight = false;
    this.deps.emit({
      type: 'eject',
      host: host.origin,
      consecutiveFailures: host.consecutiveFailures,
      ejectionMs,
      ejections: host.ejections,
      error,
    });
    this.deps.ejected(host);
    this.deps.logger.warn(
      { host: host.origin, ejectionMs, ejections: host.ejections, err: error },
      'rest-client: host ejected',
    );
    if (this.config.probe !== 'request') this.scheduleProbe(host, ejectionMs);
  }

  private readmit(host: HostPool, via: 'probe' | 'request', now: number): void {
    if (host.state === 'healthy') return;
    this.outliers.readmit(host, now);
    host.state = 'healthy';
    host.probeInFlight = false;
    this.deps.emit({ type: 'readmit', host: host.origin, via, ejectedMs: now - host.ejectedAt });
    this.deps.logger.info({ host: host.origin, via }, 'rest-client: host readmitted');
  }

  private scheduleProbe(host: HostPool, ms: number): void {
    this.clearProbe(host);
    if (this.deps.closed()) return;
    const timer = this.deps.clock.setTimeout(() => {
      host.probeTimer = undefined;
      void this.probe(host);
    }, ms);
    timer.unref?.();
    host.probeTimer = timer;
  }

  private clearProbe(host: HostPool): void {
    if (host.probeTimer !== undefined) this.deps.clock.clearTimeout(host.probeTimer);
    host.probeTimer = undefined;
  }

  /** Sends the configured active probe to an ejected host. */
  private async probe(host: HostPool): Promise<void> {
    const probe = this.config.probe;
    const deps = this.deps;
    if (probe === 'request' || deps.closed() || host.removed || host.state !== 'ejected') return;
    host.state = 'probing';
    host.probeInFlight = true;
    let error: RestClientError | undefined;
    let passed = false;
    const start = deps.now();
    // The load counts the probe (so a readmitted host is not shunned for its old failures).
    deps.load.start(host);
    try {
      passed = probe.expect(await deps.sendProbe(host, probe));
    } catch (failure) {
      error = failure as RestClientError;
    }
    deps.load.end(host, { ok: passed, durationMs: Math.max(0, deps.now() - start) });
    if (deps.closed() || host.removed || host.state !== 'probing') return;
    const now = deps.now();
    if (passed) {
      this.readmit(host, 'probe', now);
    } else {
      deps.emit({ type: 'probeFailed', host: host.origin, error });
      deps.logger.warn({ host: host.origin, err: error }, 'rest-client: probe failed');
      this.eject(host, error, now);
    }
  }
}
