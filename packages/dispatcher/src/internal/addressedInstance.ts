import { AbortedError, isXError, timeoutSignal, untilAborted, type Clock } from '@x/resilience';
import { DeadlineExceededError, NoCapacityError } from '../errors.js';
import type { NormalizedVersionSpec } from '../versionSpec.js';
import type { Deadline } from './deadline.js';
import type { Instance } from './instance.js';

/** What the waits for an addressed instance read from its version pool. */
export interface AddressedPool {
  readonly clock: Clock;
  readonly module: string;
  readonly version: string;
  readonly spec: NormalizedVersionSpec;
  retryAfterMs(): number;
}

/**
 * Waits for `promise` (an addressed instance getting ready) at most `maxPendingLatencyMs` and the
 * deadline: `NO_CAPACITY` or `DEADLINE_EXCEEDED` after, `ABORTED` when `signal` aborts.
 */
export async function waitUntilReady(
  pool: AddressedPool,
  promise: Promise<void>,
  deadline: Deadline,
  signal: AbortSignal | undefined,
): Promise<void> {
  const clock = pool.clock;
  const waitMs = Math.min(pool.spec.maxPendingLatencyMs, deadline.at - clock.now());
  if (waitMs <= 0) throw new DeadlineExceededError(deadline.timeoutMs);
  const bounded = timeoutSignal(
    clock,
    waitMs,
    () =>
      clock.now() >= deadline.at
        ? new DeadlineExceededError(deadline.timeoutMs)
        : new NoCapacityError(
            'instance did not become ready in time',
            'pending-latency',
            pool.retryAfterMs(),
          ),
    signal,
  );
  try {
    await untilAborted(promise, bounded.signal);
  } catch (error) {
    throw signal?.aborted && error === signal.reason
      ? new AbortedError({ cause: signal.reason })
      : error;
  } finally {
    bounded.clear();
  }
}

/**
 * Waits in the instance's own bounded queue (its Bulkhead: `maxQueuedRequests`, at most
 * `maxPendingLatencyMs`) for a slot, within the deadline.
 */
export async function waitForInstanceSlot(
  pool: AddressedPool,
  instance: Instance,
  deadline: Deadline,
  signal: AbortSignal | undefined,
): Promise<void> {
  const waitMs = deadline.at - pool.clock.now();
  if (waitMs <= 0) throw new DeadlineExceededError(deadline.timeoutMs);
  const bounded = timeoutSignal(
    pool.clock,
    waitMs,
    () => new DeadlineExceededError(deadline.timeoutMs),
    signal,
  );
  try {
    await instance.bulkhead.acquire(bounded.signal);
  } catch (error) {
    if (isXError(error, 'BULKHEAD_FULL'))
      throw new NoCapacityError(
        `instance ${instance.id} of ${pool.module}/${pool.version} has no free slot within ${pool.spec.maxPendingLatencyMs} ms`,
        'pending-latency',
        pool.retryAfterMs(),
        { cause: error },
      );
    const reason: unknown = bounded.signal.reason;
    throw reason instanceof DeadlineExceededError
      ? reason
      : signal?.aborted
        ? new AbortedError({ cause: signal.reason })
        : error;
  } finally {
    bounded.clear();
  }
}
