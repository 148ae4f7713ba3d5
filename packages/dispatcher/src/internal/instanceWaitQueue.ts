import { AbortedError, Fifo, type Clock } from '@x/resilience';
import { DeadlineExceededError, NoCapacityError } from '../errors.js';
import type { NormalizedVersionSpec } from '../versionSpec.js';
import type { Instance } from './instance.js';
import type { Deadline } from './deadline.js';

interface Waiter {
  resolve: (instance: Instance) => void;
  reject: (error: unknown) => void;
  settled: boolean;
}

/** What the queue asks of its version pool. */
export interface WaitQueueOwner {
  /** Takes a slot on a routable instance without waiting, or undefined. */
  pickNow(): Instance | undefined;
  /** Requests are waiting: start instances as the scaling mode allows. */
  demand(): void;
  retryAfterMs(): number;
  recordPending(ms: number): void;
}

/**
 * The requests of one version waiting for any of its instances: a bounded FIFO (`Fifo` of
 * `@x/resilience`) whose entries leave on their own when they time out or abort (skipped lazily,
 * compacted when they pile up), served first come first served as slots free up ({@link wake}).
 */
export class InstanceWaitQueue {
  private readonly waiters = new Fifo<Waiter>();
  private count = 0;

  constructor(
    private readonly owner: WaitQueueOwner,
    private readonly module: string,
    private readonly version: string,
    private readonly spec: NormalizedVersionSpec,
    private readonly clock: Clock,
  ) {}

  /** Requests waiting now. */
  get waiting(): number {
    return this.count;
  }

  /**
   * Queues a request for the next free instance: `NO_CAPACITY` when `maxQueuedRequests` wait
   * already or no instance frees up within `maxPendingLatencyMs`, `DEADLINE_EXCEEDED` past the
   * deadline, `ABORTED` when `signal` aborts. Asks the owner for more instances once queued.
   */
  enqueue(deadline: Deadline, signal: AbortSignal | undefined): Promise<Instance> {
    const spec = this.spec;
    if (this.count >= spec.maxQueuedRequests) {
      return Promise.reject(
        new NoCapacityError(
          `${this.module}/${this.version}: ${this.count} requests are waiting already (maxQueuedRequests)`,
          'requests',
          this.owner.retryAfterMs(),
        ),
      );
    }
    if (signal?.aborted) return Promise.reject(new AbortedError({ cause: signal.reason }));
    const clock = this.clock;
    const enqueuedAt = clock.now();
    const waitMs = Math.min(spec.maxPendingLatencyMs, deadline.at - enqueuedAt);
    if (waitMs <= 0) return Promise.reject(new DeadlineExceededError(deadline.timeoutMs));
    const promise = new Promise<Instance>((resolve, reject) => {
      const finish = () => {
        waiter.settled = true;
        this.count--;
        clock.clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.owner.recordPending(clock.now() - enqueuedAt);
      };
      const waiter: Waiter = {
        settled: false,
        resolve: instance => {
          finish();
          resolve(instance);
        },
        reject: error => {
          finish();
          reject(error);
        },
      };
      const onAbort = () => waiter.reject(new AbortedError({ cause: signal!.reason }));
      const timer = clock.setTimeout(() => {
        if (waiter.settled) return;
        if (clock.now() >= deadline.at)
          waiter.reject(new DeadlineExceededError(deadline.timeoutMs));
        else
          waiter.reject(
            new NoCapacityError(
              `${this.module}/${this.version}: no instance free within ${spec.maxPendingLatencyMs} ms (maxPendingLatencyMs)`,
              'pending-latency',
              this.owner.retryAfterMs(),
            ),
          );
      }, waitMs);
      timer.unref?.();
      signal?.addEventListener('abort', onAbort, { once: true });
      if (this.waiters.length > 2 * this.count + 16) this.waiters.removeWhere(w => w.settled);
      this.waiters.push(waiter);
      this.count++;
    });
    this.owner.demand();
    return promise;
  }

  /** Hands free slots to waiters, first come first served. */
  wake(): void {
    while (this.count > 0 && this.waiters.length > 0) {
      const head = this.waiters.peek()!;
      if (head.settled) {
        this.waiters.shift();
        continue;
      }
      const instance = this.owner.pickNow();
      if (instance === undefined) break;
      this.waiters.shift();
      head.resolve(instance);
    }
    if (this.count === 0 && this.waiters.length > 0) this.waiters.drain();
  }

  /** Fails every waiting request with `error()`. */
  rejectAll(error: () => unknown): void {
    for (const waiter of this.waiters.drain()) if (!waiter.settled) waiter.reject(error());
  }
}
