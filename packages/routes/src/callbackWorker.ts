import type { TimeoutPolicy } from '@x/resilience';
import { RouteWorker } from './routeWorker.js';
import type { CallbackKind, RouteRuntime } from './routeRuntime.js';
import type { WorkerContext } from './workerContext.js';

/** The constructor a route uses for callback workers (≙ `callback_worker_class`). */
export type CallbackWorkerClass = new (
  route: RouteRuntime,
  original: RouteWorker<any, any, any>,
  kind: CallbackKind,
  event: unknown,
  attempt: number,
) => CallbackWorker;

/**
 * Runs one of a route's callbacks for a finished worker (≙ `CallbackWorker`): the callback target
 * gets `(event, ctx)`, where `event` carries the original message, its translation and the error
 * or result; it shares the original's metadata and dependencies. Its failures never trigger
 * callbacks and never use the route's backoff (only the callbacks' own policy).
 */
export class CallbackWorker extends RouteWorker<unknown, unknown, unknown> {
  constructor(
    route: RouteRuntime,
    readonly original: RouteWorker<any, any, any>,
    readonly kind: CallbackKind,
    readonly event: unknown,
    attempt: number,
  ) {
    super(route, {
      args: original.args,
      meta: original.meta,
      delivery: original.delivery,
      attempt,
    });
    this.adoptTranslation(original.translatedArgs);
  }

  protected override get timeoutPolicy(): TimeoutPolicy | undefined {
    return this.route.callbackTimeoutPolicy;
  }

  /** Callbacks run after the outcome, deadline or not: only their own `callbacks.timeoutMs` bounds them. */
  protected override get messageDeadline(): number {
    return Infinity;
  }

  protected override invoke(_input: unknown, ctx: WorkerContext<any>): unknown {
    const call = () => this.route.callCallback(this.kind, this.event, ctx);
    const deps = this.route.dependencyList;
    return deps.length === 0 ? call() : this.invokeWithDeps(deps, call);
  }
}
