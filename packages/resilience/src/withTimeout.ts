import type { Clock } from './clock.js';

/**
 * Settles like `promise`, or rejects with `reason()` after `ms` on `clock` (the promise keeps
 * running). The timer is unref'd and cleared once the promise settles.
 */
export function withTimeout<T>(
  clock: Clock,
  promise: Promise<T>,
  ms: number,
  reason: () => unknown,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = clock.setTimeout(() => reject(reason()), ms);
    timer.unref?.();
    promise.then(
      value => {
        clock.clearTimeout(timer);
        resolve(value);
      },
      error => {
        clock.clearTimeout(timer);
        reject(error);
      },
    );
  });
}
