import { Redis } from 'ioredis';
import type { BreakerStore, RetryBudget, RetryBudgetOptions } from '@x/resilience';
import { redisBreakerStore, redisRetryBudget } from '@x/resilience-redis';

/**
 * State the replicas of a fleet can share, given to `startGateway` by code that embeds the
 * gateway. Each is optional: without it the gateway keeps that state per process (the default,
 * and what one process needs). The seam for `@x/resilience-redis` (`redisBreakerStore`, and
 * later its rate limiter and retry budget): see docs/SCALING.md.
 */
export interface SharedStores {
  /** Breaker state of the orders circuits (keys `orders/<version>`). */
  readonly breakerStore?: BreakerStore;
  /** A retry budget shared by the fleet under `name` (`catalog`, `orders`). */
  readonly retryBudget?: (name: string, options: RetryBudgetOptions) => RetryBudget;
}

/** The shared stores a gateway makes itself from `REDIS_URL`, and the connection they use. */
export interface RedisSharedStores extends SharedStores {
  /** The connection (also used by the edge rate limits). */
  readonly redis: Redis;
  close(): Promise<void>;
}

/**
 * With `REDIS_URL`, the replicas share their breakers (`redisBreakerStore`: a circuit one replica
 * opens is open on the others within milliseconds, through pub/sub) and their retry budgets
 * (`redisRetryBudget`) over one connection of their
 * own; every store is local-first, so a Redis outage never delays or fails a request.
 */
export function redisSharedStores(
  url: string,
  prefix: string,
  onError: (error: Error) => void,
): RedisSharedStores {
  // the offline queue stays on: the breaker store's subscriber (a duplicate of this connection)
  // must be able to SUBSCRIBE before it is connected; the stores themselves never wait for Redis
  const redis = new Redis(url, { maxRetriesPerRequest: 1, connectTimeout: 2_000 });
  redis.on('error', onError);
  const breakerStore = redisBreakerStore(redis, { prefix: `${prefix}:breakers`, onError });
  const budgets: Array<{ close(): unknown }> = [];
  return {
    redis,
    breakerStore,
    // retries are a share of the fleet's calls, not of each replica's (synced every 100 ms;
    // while Redis is away each replica's own budget decides)
    retryBudget: (name, options) => {
      const budget = redisRetryBudget({
        ...options,
        redis,
        key: name,
        keyPrefix: `${prefix}:rb`,
        onError,
      });
      budgets.push(budget);
      return budget;
    },
    close: async () => {
      for (const budget of budgets) await budget.close();
      await breakerStore.close();
      redis.disconnect();
    },
  };
}
