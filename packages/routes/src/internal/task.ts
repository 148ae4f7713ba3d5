import type { Entrypoint } from '../entrypoint.js';
import type { Meta, Outcome } from '../outcome.js';
import type { Delivery } from '../entrypoint.js';
import type { TraceSpan } from '@x/resilience';

const noop = (): void => {};

/**
 * One delivery in flight inside a route: the {@link Delivery} the overridable steps see, plus the
 * bookkeeping the drain needs. Its AbortController exists only once somebody reads `signal`.
 */
export class Task implements Delivery {
  started = false;
  /** The message's deadline on the route clock (`Infinity`: none). */
  deadline = Infinity;
  /** Waiting for a worker slot or sleeping between synchronous retries (handed back at stop). */
  waiting = false;
  done = false;
  /** A worker slot is held now (released by the worker, or when the task is killed). */
  holding = false;
  heldLimiter: { release(): void } | undefined = undefined;
  heldBudget: { release(): void } | undefined = undefined;
  /** Latest metadata and attempt count (for the cancelled outcome). */
  meta: Meta;
  attempts = 0;
  /** The execution's span, when traced. */
  span: TraceSpan | undefined = undefined;
  /** Set by the route: settles this task once. */
  settle: (task: Task, outcome: Outcome) => void = noop;
  /** Resolves the promise `startRoute` returned (set once a step went asynchronous). */
  resolve: (outcome: Outcome) => void = noop;
  /** The outcome, once settled. */
  outcome: Outcome | undefined = undefined;
  route: { internalFailure(task: Task, error: unknown): Outcome } | undefined = undefined;
  /** @internal Neighbours in the route's `TaskSet` (an intrusive list: no hashing per message). */
  prev: Task | undefined = undefined;
  next: Task | undefined = undefined;
  private controller: AbortController | undefined = undefined;
  private reason: unknown = undefined;
  private unlink: (() => void) | undefined = undefined;

  constructor(
    readonly entryId: unknown,
    readonly entrypoint: Entrypoint<any> | undefined,
    meta: Meta,
    private readonly external: AbortSignal | undefined,
  ) {
    this.meta = meta;
  }

  get signal(): AbortSignal {
    if (this.controller) return this.controller.signal;
    const controller = (this.controller = new AbortController());
    if (this.reason !== undefined) controller.abort(this.reason);
    else if (this.external) {
      if (this.external.aborted) controller.abort(this.external.reason);
      else {
        const external = this.external;
        const onAbort = () => controller.abort(external.reason);
        external.addEventListener('abort', onAbort, { once: true });
        this.unlink = () => external.removeEventListener('abort', onAbort);
      }
    }
    return controller.signal;
  }

  get aborted(): boolean {
    return this.reason !== undefined || !!this.external?.aborted;
  }

  /** Settles the task with `outcome` (once). */
  finish(outcome: Outcome): void {
    this.settle(this, outcome);
  }

  /** Settles the task after an overridden step threw `error` (see `Route.internalFailure`). */
  fail(error: unknown): void {
    this.settle(this, this.route!.internalFailure(this, error));
  }

  /** Detaches from the entrypoint's signal once the delivery settled. */
  dispose(): void {
    if (this.unlink) {
      this.unlink();
      this.unlink = undefined;
    }
  }

  /** `abort`, bound (handed to entrypoints through `onAbort`). */
  get abortFn(): (reason: unknown) => void {
    return reason => this.abort(reason);
  }

  /** Aborts the signal (first reason wins). */
  abort(reason: unknown): void {
    if (this.reason !== undefined) return;
    this.reason = reason;
    this.controller?.abort(reason);
  }
}
