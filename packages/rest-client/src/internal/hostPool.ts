import { Pool } from 'undici';
import type { EndpointLoad, LoadTracker, TimerHandle } from '@x/resilience';
import type { RestClientError } from '../errors.js';
import type { HostState, HostStats, Upstream } from '../hostStats.js';

/** undici `Pool` settings of every host of a client. */
export interface PoolSettings {
  readonly connections: number;
  readonly pipelining: number;
  readonly keepAliveTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly maxResponseSize: number;
  readonly headersTimeoutMs: number;
  /** Extra undici `Pool` options (TLS `connect` options, `allowH2`...), merged last. */
  readonly pool: Pool.Options | undefined;
}

/**
 * One host: its undici `Pool` (one per host, as the design asks) and O(1) counters. It is the
 * endpoint object balancers see (`Upstream`). Its load counters (in flight, requests, failures,
 * failure streak, EWMA) are its entry in the client's `LoadTracker` (see `HostLoad`), not a copy.
 */
export class HostPool implements Upstream {
  /** The host's address; changed only by {@link rebind} (a host moved to a new address). */
  origin: string;
  /** The undici pool of the current address; {@link rebind} swaps it. */
  pool: Pool;
  readonly connections: number;
  /** The host's live entry in the client's load tracker. */
  readonly load: EndpointLoad;
  connected = 0;
  status5xx = 0;
  replays = 0;
  retries = 0;
  lastError: RestClientError | undefined = undefined;
  // Passive health.
  state: HostState = 'healthy';
  ejections = 0;
  ejectedAt = 0;
  ejectedUntil = 0;
  /** Clock time the last ejection ended (for resetting the doubling after a healthy period). */
  readmittedAt = 0;
  probeInFlight = false;
  probeTimer: TimerHandle | undefined = undefined;
  removed = false;

  constructor(
    origin: string,
    private readonly settings: PoolSettings,
    loads: LoadTracker<HostPool>,
  ) {
    this.origin = origin;
    this.connections = settings.connections;
    this.load = loads.load(this);
    this.pool = this.open(origin);
  }

  /** Requests on the wire and not finished (body included). */
  get inFlight(): number {
    return this.load.inFlight;
  }

  /** Tries completed (active health probes included). */
  get requests(): number {
    return this.load.requests;
  }

  /** Tries that failed for health purposes. */
  get failures(): number {
    return this.load.failures;
  }

  /** Failures since the last success (outlier detection resets it on readmission). */
  get consecutiveFailures(): number {
    return this.load.consecutiveFailures;
  }

  set consecutiveFailures(count: number) {
    this.load.consecutiveFailures = count;
  }

  /**
   * Moves the host to a new address, keeping its counters, health state and identity (the
   * balancer's load tracker is keyed by this object): a new undici `Pool` for `origin`; the old
   * one is returned for the caller to close once its requests settle.
   */
  rebind(origin: string): Pool {
    const old = this.pool;
    this.origin = origin;
    this.pool = this.open(origin);
    return old;
  }

  private open(origin: string): Pool {
    const settings = this.settings;
    const pool = new Pool(origin, {
      connections: settings.connections,
      pipelining: settings.pipelining,
      keepAliveTimeout: settings.keepAliveTimeoutMs,
      headersTimeout: settings.headersTimeoutMs,
      bodyTimeout: settings.headersTimeoutMs,
      maxResponseSize: settings.maxResponseSize === Infinity ? -1 : settings.maxResponseSize,
      ...settings.pool,
      connect: {
        timeout: settings.connectTimeoutMs,
        ...(settings.pool?.connect as object | undefined),
      },
    });
    // Counted across pools: a replaced address's connections stay open until its requests end.
    pool.on('connect', () => {
      this.connected++;
    });
    pool.on('disconnect', () => {
      if (this.connected > 0) this.connected--;
    });
    // A failed connection attempt is reported to the request; the pool must not crash the process.
    pool.on('connectionError', () => {});
    return pool;
  }

  /** Open connections not carrying a request (lupyne's cached connections). */
  get idle(): number {
    const idle = this.connected - this.inFlight;
    return idle > 0 ? idle : 0;
  }

  /** Requests waiting for a connection. */
  get pending(): number {
    const pending = this.inFlight - this.connections;
    return pending > 0 ? pending : 0;
  }

  /** A snapshot of the counters. */
  snapshot(): HostStats {
    const load = this.load;
    return {
      host: this.origin,
      inFlight: load.inFlight,
      pending: this.pending,
      connected: this.connected,
      idle: this.idle,
      requests: load.requests,
      failures: load.failures,
      consecutiveFailures: load.consecutiveFailures,
      status5xx: this.status5xx,
      replays: this.replays,
      retries: this.retries,
      ewmaMs: load.ewmaMs,
      state: this.state,
      ejected: this.state !== 'healthy',
      ejectedUntil: this.state === 'healthy' ? undefined : this.ejectedUntil,
      ejections: this.ejections,
      lastError: this.lastError,
    };
  }
}
