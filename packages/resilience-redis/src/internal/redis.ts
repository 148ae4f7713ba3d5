import type { Redis } from 'ioredis';

/** The ioredis client this package takes: a `Redis` instance (standalone or Sentinel). */
export type RedisClient = Redis;

/** True when the connection can run a command now (no offline queue, no wait for a reconnect). */
export function isReady(redis: RedisClient): boolean {
  return redis.status === 'ready';
}

/**
 * Settles with `promise`, or rejects with a timeout error after `ms`; the timer never keeps the
 * process alive. The late result of a timed-out promise is ignored (its rejection too).
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`${what}: no answer from Redis within ${ms} ms`));
    }, ms);
    timer.unref();
    promise.then(
      value => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
