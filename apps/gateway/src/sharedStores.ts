import type { BreakerStore } from '@x/resilience';

/**
 * State the replicas of a fleet can share, given to `startGateway` by code that embeds the
 * gateway. Each is optional: without it the gateway keeps that state per process (the default,
 * and what one process needs). The seam for `@x/resilience-redis` (`redisBreakerStore`, and
 * later its rate limiter and retry budget): see docs/SCALING.md.
 */
export interface SharedStores {
  /** Breaker state of the orders circuits (keys `orders/<version>`). */
  readonly breakerStore?: BreakerStore;
}
