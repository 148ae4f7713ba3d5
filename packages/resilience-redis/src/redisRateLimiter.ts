import { duration, InvalidArgumentError, RateLimitedError, withoutStack } from '@x/resilience';
import {
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
  RLWrapperTimeouts,
} from 'rate-limiter-flexible';
import { integer, nonEmptyString, redisClient } from './internal/options.js';
import type { RedisClient } from './internal/redis.js';

/** Options of {@link redisRateLimiter}. */
export interface RedisRateLimiterOptions {
  /** The ioredis client (shared with the rest of the process; this limiter never closes it). */
  readonly redis: RedisClient;
  /** Calls admitted per key per window, across every process sharing Redis. Integer >= 1. */
  readonly points: number;
  /** The window, in ms: a whole number of seconds, >= 1 000. */
  readonly durationMs: number;
  /** Prefix of the Redis keys; one per limiter (a global and a per-client limiter need two). Default `'x:rl'`. */
  readonly keyPrefix?: string;
  /**
   * The limit each process applies on its own while Redis is down, slow or unreachable (an
   * in-memory `RateLimiterMemory` as rate-limiter-flexible's `insuranceLimiter`). Default
   * `{ points }`: with R processes the fleet then admits up to R × points per window.
   */
  readonly localFallback?: { readonly points?: number };
  /** Longest wait for Redis on a consume before the local limit decides. Default 200 ms. */
  readonly timeoutMs?: number;
}

/** What {@link RedisRateLimiter.consume} decided. */
export interface RateLimitDecision {
  /** True when the call may go ahead. */
  readonly allowed: boolean;
  /** Ms until the window resets (when refused: until a call would be admitted). */
  readonly retryAfterMs: number;
  /** Calls left in this window for the key. */
  readonly remaining: number;
}

/** A fixed-window rate limit shared through Redis; see {@link redisRateLimiter}. */
export interface RedisRateLimiter {
  readonly points: number;
  readonly durationMs: number;
  /** Takes `points` (default 1) for `key`; never rejects (Redis trouble → the local limit decides). */
  consume(key: string, points?: number): Promise<RateLimitDecision>;
  /** Like {@link consume}, but rejects a refused call with `RATE_LIMITED` (`RateLimitedError`, `retryAfterMs`). */
  take(key: string, points?: number): Promise<void>;
}

/**
 * A rate limit of `points` calls per `durationMs` per key, shared by every process on one Redis
 * (rate-limiter-flexible's `RateLimiterRedis`, fixed windows, an atomic INCR per call). Use one
 * key per client (`consume(clientId)`) or one for everything (`consume('global')`). Local-first:
 * when Redis is down, not ready or slower than `timeoutMs`, each process applies
 * `localFallback.points` on its own (an in-memory insurance limiter), so an outage degrades to
 * per-process limits, never to failed or hung calls.
 *
 * @example
 * const perClient = redisRateLimiter({ redis, points: 100, durationMs: 60_000, keyPrefix: 'gw:client' });
 * const { allowed, retryAfterMs } = await perClient.consume(clientId);
 */
export function redisRateLimiter(options: RedisRateLimiterOptions): RedisRateLimiter {
  const redis = redisClient(options.redis, 'redis');
  const points = integer(options.points, 'points', 1);
  const durationMs = duration(options.durationMs, 'durationMs', {
    min: 1000,
    allowInfinity: false,
  });
  if (durationMs % 1000 !== 0)
    throw new InvalidArgumentError(
      'durationMs',
      `durationMs: expected a whole number of seconds in ms (1000, 2000, …), received ${durationMs}`,
    );
  const keyPrefix = nonEmptyString(options.keyPrefix ?? 'x:rl', 'keyPrefix');
  const localPoints = integer(options.localFallback?.points ?? points, 'localFallback.points', 1);
  const timeoutMs = duration(options.timeoutMs ?? 200, 'timeoutMs', {
    exclusiveMin: true,
    allowInfinity: false,
  });
  const insuranceLimiter = new RateLimiterMemory({
    points: localPoints,
    duration: durationMs / 1000,
    keyPrefix,
  });
  const limiter = new RLWrapperTimeouts({
    limiter: new RateLimiterRedis({
      storeClient: redis,
      points,
      duration: durationMs / 1000,
      keyPrefix,
      rejectIfRedisNotReady: true, // never queue behind a reconnect: the insurance decides at once
      insuranceLimiter,
    }),
    timeoutMs,
    insuranceLimiter,
  });

  const limit: RedisRateLimiter = {
    points,
    durationMs,
    async consume(key, take = 1) {
      nonEmptyString(key, 'key');
      integer(take, 'points', 1);
      try {
        const res = await limiter.consume(key, take);
        return { allowed: true, retryAfterMs: 0, remaining: res.remainingPoints };
      } catch (reason) {
        if (reason instanceof RateLimiterRes)
          return {
            allowed: false,
            retryAfterMs: Math.max(0, reason.msBeforeNext),
            remaining: reason.remainingPoints,
          };
        // Both Redis and the insurance limiter failed: admit rather than fail the call.
        return { allowed: true, retryAfterMs: 0, remaining: 0 };
      }
    },
    async take(key, take = 1) {
      const decision = await limit.consume(key, take);
      if (!decision.allowed) throw withoutStack(() => new RateLimitedError(decision.retryAfterMs));
    },
  };
  return limit;
}
