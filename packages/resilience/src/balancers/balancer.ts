import type { Clock } from '../clock.js';
import { systemClock } from '../clock.js';

/** Live, mutable stats of one endpoint, updated in O(1) by {@link LoadTracker}. */
export interface EndpointLoad {
  /** Requests started and not yet ended. */
  inFlight: number;
  /** Requests completed. */
  requests: number;
  /** Requests completed with `ok: false`. */
  failures: number;
  /** Failures since the last success. */
  consecutiveFailures: number;
  /** Peak-EWMA latency in ms (0 until the first sample; decays towards 0 while idle). */
  ewmaMs: number;
  /** Clock time (ms) of the last start or end. */
  lastUpdate: number;
}

/** How a request ended. */
export interface EndpointOutcome {
  ok: boolean;
  durationMs: number;
  /**
   * The request ended without saying anything about the endpoint's health (aborted by its
   * caller, the client shut down, a body too large to keep): {@link LoadTracker} counts it in
   * `requests` and its duration in the EWMA but leaves `failures` and `consecutiveFailures` as
   * they are, whatever `ok` says. Pass `ok: true` with it, for balancers that do not read it.
   */
  neutral?: boolean;
}

/** Chooses an endpoint per request and tracks the load of each (endpoints are compared by identity). */
export interface Balancer<E> {
  readonly name: string;
  /** Picks one of `candidates` that is not in `exclude`; undefined when none is eligible. Never throws on an empty list. */
  pick(candidates: readonly E[], exclude?: ReadonlySet<E>): E | undefined;
  /** A request to `endpoint` starts (inFlight++). */
  start(endpoint: E): void;
  /** It ended (inFlight--, counters, EWMA update). */
  end(endpoint: E, outcome: EndpointOutcome): void;
  /** The load tracked for `endpoint` (created zeroed on first use). */
  load(endpoint: E): EndpointLoad;
  /** Drop the stats of an endpoint removed from the pool. */
  forget(endpoint: E): void;
  /**
   * The tracker `start`, `end`, `load` and `forget` delegate to, when there is one (every
   * balancer built by {@link createBalancer}): a client may read its per-endpoint counters from
   * it instead of keeping a second copy. A custom balancer without one leaves it undefined.
   */
  readonly tracker?: LoadTracker<E>;
}

/** Options of {@link LoadTracker} (and of every balancer factory). */
export interface LoadTrackerOptions {
  /** Time constant of the peak-EWMA in ms. Default 10_000. */
  decayMs?: number;
  /** Time source. Default {@link systemClock}. */
  clock?: Clock;
}

/** A new, zeroed {@link EndpointLoad} (what {@link LoadTracker} starts an endpoint with). */
export function emptyLoad(): EndpointLoad {
  return {
    inFlight: 0,
    requests: 0,
    failures: 0,
    consecutiveFailures: 0,
    ewmaMs: 0,
    lastUpdate: 0,
  };
}

const ZERO_LOAD: Readonly<EndpointLoad> = Object.freeze(emptyLoad());

/**
 * Map-backed per-endpoint load stats shared (by composition) by every balancer. All operations
 * are O(1); the only allocation is the stats object of an endpoint seen for the first time.
 *
 * Latency is a peak-EWMA (Finagle/Linkerd): on `end`, a duration above the estimate replaces it;
 * otherwise `ewma = ewma * w + d * (1 - w)` with `w = exp(-elapsed / decayMs)`, `elapsed` being
 * the time since `lastUpdate`. On `start` the estimate is first decayed towards 0 for the time
 * since `lastUpdate`, so idle time counts and an endpoint that was slow is retried eventually.
 * Defaults: `decayMs` 10_000, `clock` {@link systemClock}.
 */
export class LoadTracker<E> {
  /** Time constant of the peak-EWMA in ms. */
  readonly decayMs: number;
  /** The time source. */
  readonly clock: Clock;
  private readonly loads = new Map<E, EndpointLoad>();

  constructor(options: LoadTrackerOptions = {}) {
    const { decayMs = 10_000, clock = systemClock } = options;
    if (typeof decayMs !== 'number' || !(decayMs > 0)) {
      throw new RangeError(`decayMs must be a number > 0, got ${String(decayMs)}`);
    }
    if (clock === null || typeof clock !== 'object' || typeof clock.now !== 'function') {
      throw new TypeError('clock must be a Clock with a now() method');
    }
    this.decayMs = decayMs;
    this.clock = clock;
  }

  /** Number of endpoints with stats. */
  get size(): number {
    return this.loads.size;
  }

  /** The stats of `endpoint`, created zeroed on first use. */
  load(endpoint: E): EndpointLoad {
    let load = this.loads.get(endpoint);
    if (load === undefined) {
      load = emptyLoad();
      this.loads.set(endpoint, load);
    }
    return load;
  }

  /**
   * The stats of `endpoint` without creating them: a shared frozen zero load when unknown. Used
   * by `pick`, so that picking among short-lived candidate objects does not grow the map.
   */
  peek(endpoint: E): Readonly<EndpointLoad> {
    return this.loads.get(endpoint) ?? ZERO_LOAD;
  }

  /** A request to `endpoint` starts: decays the EWMA to now, `inFlight++`. */
  start(endpoint: E): void {
    const load = this.load(endpoint);
    const now = this.clock.now();
    if (load.ewmaMs > 0) {
      const elapsed = now - load.lastUpdate;
      if (elapsed > 0) load.ewmaMs *= Math.exp(-elapsed / this.decayMs);
    }
    load.inFlight++;
    load.lastUpdate = now;
  }

  /**
   * A request to `endpoint` ended: `inFlight--` (not below 0), counters (a `neutral` outcome
   * leaves `failures` and `consecutiveFailures` alone), peak-EWMA update. Ignored for an endpoint without stats (never started, or forgotten while in flight), so
   * late completions do not resurrect removed endpoints. Throws `RangeError` on a negative or
   * non-finite duration.
   */
  end(endpoint: E, outcome: EndpointOutcome): void {
    const d = outcome.durationMs;
    if (!(d >= 0 && d < Infinity)) {
      throw new RangeError(`durationMs must be a finite number >= 0, got ${String(d)}`);
    }
    const load = this.loads.get(endpoint);
    if (load === undefined) return;
    const now = this.clock.now();
    if (load.inFlight > 0) load.inFlight--;
    load.requests++;
    if (outcome.neutral !== true) {
      if (outcome.ok) {
        load.consecutiveFailures = 0;
      } else {
        load.failures++;
        load.consecutiveFailures++;
      }
    }
    if (d > load.ewmaMs) {
      load.ewmaMs = d;
    } else {
      const elapsed = now - load.lastUpdate;
      const w = elapsed > 0 ? Math.exp(-elapsed / this.decayMs) : 1;
      load.ewmaMs = load.ewmaMs * w + d * (1 - w);
    }
    load.lastUpdate = now;
  }

  /** Drops the stats of `endpoint`. */
  forget(endpoint: E): void {
    this.loads.delete(endpoint);
  }
}

/**
 * Builds a {@link Balancer} from a pick rule and a {@link LoadTracker} that `start`, `end`,
 * `load` and `forget` delegate to. Handy for custom balancers.
 */
export function createBalancer<E>(
  name: string,
  tracker: LoadTracker<E>,
  pick: (candidates: readonly E[], exclude?: ReadonlySet<E>) => E | undefined,
): Balancer<E> {
  return {
    name,
    pick,
    tracker,
    start: endpoint => tracker.start(endpoint),
    end: (endpoint, outcome) => tracker.end(endpoint, outcome),
    load: endpoint => tracker.load(endpoint),
    forget: endpoint => tracker.forget(endpoint),
  };
}

/** Validates an injected `random` option (default `Math.random`). */
export function randomOption(random: unknown): () => number {
  if (random === undefined) return Math.random;
  if (typeof random !== 'function')
    throw new TypeError('random must be a function returning [0, 1)');
  return random as () => number;
}
