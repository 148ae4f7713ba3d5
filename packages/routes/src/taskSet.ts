import type { Clock } from '@x/resilience';
import type { EntryRef } from './entrypoint.js';
import { CancelledError } from './errors.js';
import type { Outcome } from './outcome.js';
import type { RouteEnv } from './routeEnv.js';
import { outcomeAttributes } from './routeTracer.js';
import { cancelledOutcome } from './workerOutcome.js';
import type { Task } from './internal/task.js';

/**
 * The deliveries in flight inside a route, and their drain: a route adds a task when it starts,
 * and {@link settle} resolves it and forgets it; at stop it hands back the tasks that have not
 * started, `drained` resolves once none is left, and `killAll` settles what a deadline left.
 */
export class TaskSet implements Iterable<Task> {
  private readonly tasks = new Set<Task>();
  private waiter: (() => void) | undefined = undefined;

  constructor(private readonly env: RouteEnv) {}

  get size(): number {
    return this.tasks.size;
  }

  add(task: Task): void {
    this.tasks.add(task);
  }

  /**
   * Settles a task once (its outcome, or `cancelled` when killed first): forgets it (waking the
   * drain wait when it was the last), ends its span, emits the `outcome` event, resolves it.
   */
  readonly settle = (task: Task, outcome: Outcome): void => {
    if (task.done) return;
    task.done = true;
    this.tasks.delete(task);
    if (this.waiter !== undefined && this.tasks.size === 0) this.waiter();
    task.dispose();
    const span = task.span;
    if (span !== undefined) {
      span.setAttributes(outcomeAttributes(outcome));
      span.end(outcome.kind === 'failure' ? outcome.error : undefined);
    }
    const events = this.env.events;
    if (events.active)
      events.emit({ type: 'outcome', entryId: task.entryId, at: this.env.clock.now(), outcome });
    task.resolve(outcome);
  };

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

  /** Hands back (aborts, `cancelled` not started) the tasks waiting for a slot or between retries. */
  handBack(): { returned: EntryRef[]; draining: number } {
    const returned: EntryRef[] = [];
    let draining = 0;
    for (const task of this.tasks) {
      if (task.waiting || !task.started) {
        returned.push(this.ref(task));
        task.abort(
          new CancelledError(`route ${this.env.label} stopped: handed back`, task.started),
        );
      } else draining++;
    }
    return { returned, draining };
  }

  /** Kills every task left: aborts its signal, frees its slot (`release`), settles it `cancelled`. */
  killAll(reason: CancelledError, release: (task: Task) => void): EntryRef[] {
    const killed: EntryRef[] = [];
    for (const task of [...this.tasks]) {
      killed.push(this.ref(task));
      task.abort(reason);
      release(task);
      task.settle(task, cancelledOutcome(task, reason));
    }
    return killed;
  }

  private ref(task: Task): EntryRef {
    return {
      route: this.env.label,
      entrypoint: task.entrypoint?.name ?? 'direct',
      entryId: task.entryId,
    };
  }

  [Symbol.iterator](): Iterator<Task> {
    return this.tasks[Symbol.iterator]();
  }
}
