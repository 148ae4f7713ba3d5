import type {
  Balancer,
  Clock,
  HedgePolicy,
  Logger,
  Metrics,
  RetryBudget,
  RetryPolicy,
} from '@x/resilience';
import type { RestClientError } from '../errors.js';
import type { ResolvedHealth } from '../passiveHealth.js';
import type { DecodeMode } from '../restCallOptions.js';
import type { CachedClock } from './cachedClock.js';
import type { HostPool, PoolSettings } from './hostPool.js';

/** Retry settings with defaults applied. */
export interface ResolvedRetry {
  readonly policy: RetryPolicy;
  readonly budget: RetryBudget | undefined;
  readonly retryOn: ((error: RestClientError, attempt: number) => boolean) | undefined;
  readonly statuses: ReadonlySet<number>;
  readonly retryOnTimeout: boolean;
}

/** Everything an engine needs, resolved by the public classes. */
export interface EngineConfig {
  readonly clock: Clock;
  /** Shared with the load trackers the client created itself (see `CachedClock`). */
  readonly cachedClock?: CachedClock;
  readonly totalMs: number;
  readonly perTryMs: number;
  readonly decode: DecodeMode;
  readonly headers: Readonly<Record<string, string>> | undefined;
  readonly compress: boolean;
  /** Send each try's remaining deadline in `DEADLINE_HEADER`. */
  readonly sendDeadline: boolean;
  readonly pool: PoolSettings;
  readonly retry: ResolvedRetry | undefined;
  readonly hedge: HedgePolicy | undefined;
  readonly health: ResolvedHealth | undefined;
  readonly maxPending: number;
  readonly maxConnectionsTotal: number;
  readonly metrics: Metrics | undefined;
  readonly logger: Logger;
  /** Picks hosts and tracks their load (start/end/load). */
  readonly balancer: Balancer<HostPool>;
}
