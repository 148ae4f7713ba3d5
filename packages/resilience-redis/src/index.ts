export {
  redisBreakerStore,
  type RedisBreakerStore,
  type RedisBreakerStoreOptions,
} from './redisBreakerStore.js';
export {
  redisRateLimiter,
  type RedisRateLimiter,
  type RedisRateLimiterOptions,
  type RateLimitDecision,
} from './redisRateLimiter.js';
export {
  redisRetryBudget,
  RedisRetryBudget,
  type RedisRetryBudgetOptions,
} from './redisRetryBudget.js';
export type { RedisClient } from './internal/redis.js';
