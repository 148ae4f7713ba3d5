import type { Clock } from '@x/resilience';
import type { Task } from './task.js';

/**
 * The deliveries in flight inside a route, and the wait for them to drain: a route adds a task
 * when it starts and deletes it when it settles; `drained` resolves once none is left.
 */
export class TaskSet implements Iterable<Task> {
  private readonly tasks = new Set<Task>();
  private waiter: (() => void) | undefined = undefined;

  get size(): number {
    return this.tasks.size;
  }

  add(task: Task): void {
    this.tasks.add(task);
  }

  /** Forgets a settled task; wakes the drain wait when it was the last. */
  delete(task: Task): void {
    this.tasks.delete(task);
    if (this.waiter !== undefined && this.tasks.size === 0) this.waiter();
  }

  /** Resolves true once no task is left, false when `timeoutMs` passed first on `clock`. */
  drained(clock: Clock, timeoutMs: number): Promise<boolean> {
    if (this.tasks.size === 0) return Promise.resolve(true);
    return new Promise<boolean>(resolve => {
      const timer =
        timeoutMs === Infinity
          ? undefined
          : clock.setTimeout(() => {
              this.waiter = undefined;
              resolve(false);
            }, timeoutMs);
      this.waiter = () => {
        this.waiter = undefined;
        if (timer !== undefined) clock.clearTimeout(timer);
        resolve(true);
      };
    });
  }

  [Symbol.iterator](): Iterator<Task> {
    return this.tasks[Symbol.iterator]();
  }
}
