import { LatencyHistogram, emptyLoad, type Clock, type EndpointLoad } from '@x/resilience';
import type { Channel } from './transport.js';

/** State of an endpoint. */
export type EndpointState = 'connecting' | 'up' | 'down' | 'draining' | 'removing' | 'closed';

/** Stats of one endpoint (`conn.endpoints()`). */
export interface EndpointStats {
  readonly address: string;
  readonly state: EndpointState;
  readonly inFlight: number;
  /** Credit left by our estimate (Infinity when the worker does not advertise). */
  readonly credit: number;
  /** Largest credit the worker advertised (its concurrency + queue), or the initial credit. */
  readonly capacity: number;
  readonly requests: number;
  readonly failures: number;
  readonly consecutiveFailures: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

/**
 * An endpoint as balancers see it (compared by identity): its address, state, channel, the credit
 * its worker advertised and its latency. Its counters (`inFlight`, `requests`, `failures`,
 * `consecutiveFailures`) are the balancer's `LoadTracker` stats (`load`), not a second copy.
 */
export class EndpointHandle {
  state: EndpointState = 'connecting';
  /** Estimated free slots on the worker. */
  credit: number;
  /** Largest credit seen. */
  capacity: number;
  readonly latency: LatencyHistogram;
  channel!: Channel;
  /** The balancer's live stats of this endpoint (set by the connection when it registers it). */
  load: EndpointLoad = emptyLoad();
  /** Called when the last call in flight on this endpoint ended (drains wait on it). */
  drainWaiters: (() => void)[] = [];

  constructor(
    readonly address: string,
    initialCredit: number,
    clock: Clock,
  ) {
    this.credit = initialCredit;
    this.capacity = initialCredit === Infinity ? 1 : initialCredit;
    this.latency = new LatencyHistogram({ clock, windowMs: 60_000 });
  }

  /** Attempts sent and not yet ended. */
  get inFlight(): number {
    return this.load.inFlight;
  }

  /** Attempts ended. */
  get requests(): number {
    return this.load.requests;
  }

  /** Attempts that failed. */
  get failures(): number {
    return this.load.failures;
  }

  /** Failures since the last success. */
  get consecutiveFailures(): number {
    return this.load.consecutiveFailures;
  }

  /** A snapshot for `conn.endpoints()`. */
  stats(): EndpointStats {
    return {
      address: this.address,
      state: this.state,
      inFlight: this.load.inFlight,
      credit: this.credit,
      capacity: this.capacity,
      requests: this.load.requests,
      failures: this.load.failures,
      consecutiveFailures: this.load.consecutiveFailures,
      p50Ms: this.latency.percentile(0.5),
      p99Ms: this.latency.percentile(0.99),
    };
  }

  /** Wakes the drains waiting for this endpoint to have nothing in flight. */
  wakeDrains(): void {
    if (this.load.inFlight !== 0 || this.drainWaiters.length === 0) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }
}
