import { isXError, type Bulkhead } from '@x/resilience';
import { CancelledError } from './errors.js';
import type { Task } from './internal/task.js';
import type { RouteEnv } from './routeEnv.js';
import { RouteWorker } from './routeWorker.js';
import { isThenable } from './translator.js';
import type { RunnerContext } from './runnerContext.js';

/**
 * A route's worker slots (≙ the runner's `spawn_worker`): a worker runs once it holds a slot of
 * the route's own limit (option `concurrency`, if any) and one of its context's worker budget.
 * Counts the workers running and records the task metrics and `attempt` events.
 */
export class WorkerSlots {
  /** Workers running now. */
  running = 0;
  private limiter: Bulkhead | undefined = undefined;

  /** `limit`: the route's own worker limit, if any. */
  constructor(
    private readonly env: RouteEnv,
    readonly limit: number | undefined,
  ) {}

  /** Creates the per-route limiter in the context the route is bound to. */
  bind(context: RunnerContext<any>): void {
    this.limiter =
      this.limit === undefined ? undefined : context.newLimiter(this.limit, this.env.label);
  }

  /**
   * Takes a slot (per-route limit, then the context budget), runs the worker and records the
   * metrics. A worker that gets no slot comes back failed without running (`BULKHEAD_FULL` when
   * the queue is full, `CANCELLED` when handed back at stop).
   */
  spawn<W extends RouteWorker<any, any, any>>(worker: W): Promise<W> {
    const spawned = this.spawnInline(worker);
    return isThenable(spawned) ? spawned : Promise.resolve(spawned);
  }

  /**
   * {@link spawn}, returning the finished worker itself when it got a slot at once and ran
   * synchronously (no promise per message on that path).
   */
  spawnInline<W extends RouteWorker<any, any, any>>(worker: W): W | Promise<W> {
    const task = worker.delivery as Task;
    if (task.aborted) return worker.fail(this.abortError(task));
    const limiter = this.limiter;
    const budget = this.env.context.budget;
    if (limiter === undefined || limiter.tryAcquire()) {
      if (budget.tryAcquire()) return this.runInSlot(worker, task, limiter, budget);
      limiter?.release();
    }
    return this.spawnQueued(worker, task, limiter, budget);
  }

  /** Gives back the task's slot (once: by its worker, or by a kill). */
  release(task: Task): void {
    if (!task.holding) return;
    task.holding = false;
    task.heldLimiter?.release();
    task.heldBudget?.release();
    task.heldLimiter = task.heldBudget = undefined;
    this.running--;
    this.env.metrics.gauge('route.tasks.in_flight', this.running, this.env.metricTags);
  }

  private abortError(task: Task): CancelledError {
    const reason = task.signal.reason;
    return isXError(reason, 'CANCELLED')
      ? (reason as CancelledError)
      : new CancelledError(`route ${this.env.label}: aborted before the worker started`, false, {
          cause: reason,
        });
  }

  private async spawnQueued<W extends RouteWorker<any, any, any>>(
    worker: W,
    task: Task,
    limiter: Bulkhead | undefined,
    budget: Bulkhead,
  ): Promise<W> {
    // Bulkhead.acquire reads the task's signal only when it has to queue: the AbortController of
    // the delivery exists only on this slow path. A stop aborts it, and the waiter leaves the queue.
    task.waiting = true;
    let holdsLimiter = false;
    try {
      if (limiter !== undefined) {
        const wait = limiter.acquire(task);
        if (wait !== undefined) await wait;
        holdsLimiter = true;
      }
      const wait = budget.acquire(task);
      if (wait !== undefined) await wait;
    } catch (error) {
      if (holdsLimiter) limiter!.release();
      return worker.fail(error);
    } finally {
      task.waiting = false;
    }
    if (task.aborted) {
      limiter?.release();
      budget.release();
      return worker.fail(this.abortError(task));
    }
    return this.runInSlot(worker, task, limiter, budget);
  }

  private runInSlot<W extends RouteWorker<any, any, any>>(
    worker: W,
    task: Task,
    limiter: Bulkhead | undefined,
    budget: Bulkhead,
  ): W | Promise<W> {
    task.started = true;
    task.holding = true;
    task.heldLimiter = limiter;
    task.heldBudget = budget;
    task.attempts = worker.attempt + 1;
    task.meta = worker.meta;
    const env = this.env;
    const metrics = env.metrics;
    const tags = env.metricTags;
    this.running++;
    metrics.increment('route.tasks', 1, tags);
    metrics.gauge('route.tasks.in_flight', this.running, tags);
    // a listener that came while it waited for its slot takes its start and duration
    if (!worker.timed && env.events.active) worker.timed = true;
    // a worker class that overrides `run()` is run through it; otherwise a synchronous target
    // finishes here without a promise
    const ran = worker.run === RouteWorker.prototype.run ? worker.runInline() : worker.run();
    return isThenable(ran)
      ? ran.then(w => this.finished(task, w as W))
      : this.finished(task, ran as W);
  }

  /** Frees the slot of a worker that ran, records its metrics and its `attempt` event. */
  private finished<W extends RouteWorker<any, any, any>>(task: Task, w: W): W {
    this.release(task);
    const env = this.env;
    const metrics = env.metrics;
    const tags = env.metricTags;
    if (w.timed && env.histograms) metrics.histogram('route.task.duration', w.durationMs, tags);
    if (w.failed) metrics.increment('route.task.failures', 1, tags);
    // an attempt that began untimed, before the first listener came, is not reported (no timing)
    if (env.events.active && w.timed) this.emitAttempt(task, w);
    return w;
  }

  private emitAttempt(task: Task, w: RouteWorker<any, any, any>): void {
    this.env.events.emit({
      type: 'attempt',
      entryId: task.entryId,
      callId: w.id,
      attempt: w.attempt,
      at: w.startedAt,
      durationMs: w.durationMs,
      failed: w.failed,
      ...(w.failed ? { error: w.error } : {}),
    });
  }
}
