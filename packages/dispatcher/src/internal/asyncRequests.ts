import { Bulkhead } from '@x/resilience';
import { DispatcherClosedError, NoCapacityError } from '../errors.js';

/**
 * The bounded pool behind `addAsyncRequest`: at most `limit` running, `queue` more waiting in
 * order (an `@x/resilience` {@link Bulkhead}); beyond that `NO_CAPACITY` at once. `close()` fails
 * the waiting ones with `DISPATCHER_CLOSED`.
 */
export class AsyncRequests {
  private readonly slots: Bulkhead;
  private readonly closing = new AbortController();

  constructor(limit: number, queue: number) {
    this.slots = new Bulkhead({ limit, queue });
  }

  get running(): number {
    return this.slots.running;
  }

  get queued(): number {
    return this.slots.queued;
  }

  /**
   * Runs `work` once a slot is free. Throws `NO_CAPACITY` synchronously when every slot and the
   * queue are taken, so the caller can refuse before promising anything.
   */
  submit<T>(work: () => Promise<T>): Promise<T> {
    const slots = this.slots;
    if (slots.running >= slots.limit && slots.queued >= slots.queueLimit)
      throw new NoCapacityError(
        `${slots.running} async requests running and ${slots.queued} queued (maxAsyncRequests / maxQueuedAsyncRequests)`,
        'async-requests',
        1_000,
      );
    const wait = slots.acquire(this.closing.signal);
    const run = (): Promise<T> =>
      this.closing.signal.aborted
        ? (slots.release(), Promise.reject(new DispatcherClosedError()))
        : work().finally(() => slots.release());
    if (wait === undefined) return run();
    return wait.then(run, () => {
      throw new DispatcherClosedError();
    });
  }

  /** Fails the queued requests (`DISPATCHER_CLOSED`); running ones finish. */
  close(): void {
    this.closing.abort(new DispatcherClosedError());
  }
}
