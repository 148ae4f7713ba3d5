import type { Clock, TraceSpan } from '@x/resilience';
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
  // A doubly linked list through the tasks' own `prev`/`next` fields: adding and removing cost
  // a few stores, where a `Set` hashes each task twice per message.
  private head: Task | undefined = undefined;
  private count = 0;
  private waiter: (() => void) | undefined = undefined;

  constructor(private readonly env: RouteEnv) {}

  get size(): number {
    return this.count;
  }

  add(task: Task): void {
    const head = this.head;
    task.next = head;
    if (head !== undefined) head.prev = task;
    this.head = task;
    this.count++;
  }

  private remove(task: Task): void {
    const { prev, next } = task;
    if (prev !== undefined) prev.next = next;
    else if (this.head === task) this.head = next;
    else return; // not in the list
    if (next !== undefined) next.prev = prev;
    task.prev = task.next = undefined;
    this.count--;
  }

  /**
   * Settles a task once (its outcome, or `cancelled` when killed first): forgets it (waking the
   * drain wait when it was the last), ends its span, emits the `outcome` event, resolves it.
   */
  readonly settle = (task: Task, outcome: Outcome): void => {
    if (task.done) return;
    task.done = true;
    this.remove(task);
    if (this.waiter !== undefined && this.count === 0) this.waiter();
    task.dispose();
    if (task.span !== undefined) endSpan(task.span, outcome);
    const events = this.env.events;
    if (events.active)
      events.emit({ type: 'outcome', entryId: task.entryId, at: this.env.clock.now(), outcome });
    task.outcome = outcome;
    task.resolve(outcome);
  };

  /** Resolves true once no task is left, false when `timeoutMs` passed first on `clock`. */
  drained(clock: Clock, timeoutMs: number): Promise<boolean> {
    if (this.count === 0) return Promise.resolve(true);
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
    for (const task of this) {
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
    for (const task of [...this]) {
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

  /** The tasks in flight, oldest first. */
  *[Symbol.iterator](): Iterator<Task> {
    const list: Task[] = [];
    for (let task = this.head; task !== undefined; task = task.next) list.push(task);
    for (let i = list.length - 1; i >= 0; i--) yield list[i]!;
  }
}

/** Ends a settled task's span with its outcome's attributes. */
function endSpan(span: TraceSpan, outcome: Outcome): void {
  span.setAttributes(outcomeAttributes(outcome));
  span.end(outcome.kind === 'failure' ? outcome.error : undefined);
}
