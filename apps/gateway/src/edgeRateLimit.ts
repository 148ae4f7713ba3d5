import type { IncomingMessage } from 'node:http';
import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { redisRateLimiter, type RateLimitDecision } from '@x/resilience-redis';
import type { RateLimitConfig, WindowLimit } from './config.js';

/** Why a request was refused: which limit, and when to come back. */
export interface EdgeRefusal {
  readonly scope: 'client' | 'global';
  readonly retryAfterMs: number;
}

type Consume = (key: string) => Promise<RateLimitDecision>;

/** A per-process fixed window (rate-limiter-flexible's memory limiter), for a gateway without Redis. */
function memoryLimit(limit: WindowLimit, keyPrefix: string): Consume {
  const limiter = new RateLimiterMemory({
    points: limit.points,
    duration: limit.durationMs / 1000,
    keyPrefix,
  });
  return async key => {
    try {
      const res = await limiter.consume(key);
      return { allowed: true, retryAfterMs: 0, remaining: res.remainingPoints };
    } catch (reason) {
      if (!(reason instanceof RateLimiterRes)) throw reason;
      return { allowed: false, retryAfterMs: reason.msBeforeNext, remaining: 0 };
    }
  };
}

/**
 * The gateway's edge rate limits (`rateLimit:` in the config): per client address and global,
 * fixed windows. With Redis they are shared by every replica (`@x/resilience-redis`'s
 * `redisRateLimiter`: one count for the fleet, and a per-process limit while Redis is down, so an
 * outage never fails requests); without, they are per process. The client is the peer address, or
 * the first value of `clientAddressHeader` when a trusted load balancer sets it.
 */
export class EdgeRateLimit {
  private readonly perClient: Consume | undefined;
  private readonly global: Consume | undefined;

  constructor(
    private readonly config: RateLimitConfig,
    redis: Redis | undefined,
    prefix: string,
  ) {
    const make = (limit: WindowLimit | undefined, name: string): Consume | undefined => {
      if (limit === undefined) return undefined;
      const keyPrefix = `${prefix}:rl:${name}`;
      if (redis === undefined) return memoryLimit(limit, keyPrefix);
      const shared = redisRateLimiter({ redis, ...limit, keyPrefix });
      return key => shared.consume(key);
    };
    this.perClient = make(config.perClient, 'client');
    this.global = make(config.global, 'global');
  }

  /** True when a limit is configured. */
  get active(): boolean {
    return this.perClient !== undefined || this.global !== undefined;
  }

  /** The client a request is counted against. */
  clientOf(req: IncomingMessage): string {
    const header = this.config.clientAddressHeader;
    if (header !== undefined) {
      const value = req.headers[header];
      const first = (Array.isArray(value) ? value[0] : value)?.split(',')[0]?.trim();
      if (first) return first;
    }
    return req.socket.remoteAddress ?? 'unknown';
  }

  /** Counts `req`; undefined when it may go on, else which limit refused it. */
  async check(req: IncomingMessage): Promise<EdgeRefusal | undefined> {
    if (this.perClient !== undefined) {
      const decision = await this.perClient(this.clientOf(req));
      if (!decision.allowed) return { scope: 'client', retryAfterMs: decision.retryAfterMs };
    }
    if (this.global !== undefined) {
      const decision = await this.global('all');
      if (!decision.allowed) return { scope: 'global', retryAfterMs: decision.retryAfterMs };
    }
    return undefined;
  }
}
