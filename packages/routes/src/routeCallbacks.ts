import { sleep } from '@x/resilience';
import { BackoffPolicy } from './backoffPolicy.js';
import type { CallbackWorker } from './callbackWorker.js';
import { RouteConfigError } from './errors.js';
import { compileTarget } from './internal/compileTarget.js';
import { checkKeys, checkMs } from './internal/options.js';
import type { Task } from './internal/task.js';
import type { FailureOutcome, SuccessOutcome } from './outcome.js';
import type { RouteEnv } from './routeEnv.js';
import type { FailureEvent, SettledEvent, SuccessEvent } from './routeEvent.js';
import type { Callbacks } from './routeOptions.js';
import type { CallbackKind } from './routeRuntime.js';
import type { RouteWorker } from './routeWorker.js';
import type { WorkerContext } from './workerContext.js';

const CALLBACK_KEYS = ['onFailure', 'onSuccess', 'onSettled', 'backoff', 'timeoutMs'];
const KINDS = ['onFailure', 'onSuccess', 'onSettled'] as const;

/** The overridable steps of a route that its callbacks go through (`Route` has them). */
export interface CallbackSteps {
  getCallbackWorkerInstance(
    original: RouteWorker<any, any, any>,
    kind: CallbackKind,
    event: unknown,
    attempt: number,
  ): Promise<CallbackWorker>;
  startCallbackRoute(
    original: RouteWorker<any, any, any>,
    kind: CallbackKind,
    event: unknown,
  ): Promise<unknown>;
}

/**
 * A route's callbacks (`onSuccess`, `onFailure`, `onSettled`): checks and compiles them, runs the
 * ones an outcome calls for, awaited, each with the callbacks' own retry policy (never the
 * route's), and records their metrics and `callback` events. A callback's failure is logged and
 * reported as the outcome's `callbackError`, never fatal.
 */
export class RouteCallbacks {
  /** The callbacks' own retry policy (a `syncBackoff()`), if any. */
  readonly backoff: BackoffPolicy | undefined;
  private readonly targets: Partial<
    Record<CallbackKind, (event: unknown, ctx: WorkerContext<any>) => unknown>
  > = {};

  /** `withDeps`: the route injects dependencies (callbacks get them in `ctx.deps` too). */
  constructor(callbacks: Callbacks<any, any, any>, withDeps: boolean) {
    checkKeys(callbacks, CALLBACK_KEYS, 'Route callbacks');
    for (const kind of KINDS) {
      const cb = callbacks[kind];
      if (cb !== undefined)
        this.targets[kind] = compileTarget(cb, undefined, withDeps, `callbacks.${kind}`);
    }
    if (
      callbacks.backoff !== undefined &&
      (!(callbacks.backoff instanceof BackoffPolicy) || callbacks.backoff.mode !== 'sync')
    )
      throw new RouteConfigError(
        'callbacks.backoff must be a syncBackoff() (callbacks retry in place)',
      );
    this.backoff = callbacks.backoff;
    if (callbacks.timeoutMs !== undefined)
      checkMs(callbacks.timeoutMs, 1, 'callbacks.timeoutMs', true);
  }

  /** Calls the compiled callback target of `kind`. */
  call(kind: CallbackKind, event: unknown, ctx: WorkerContext<any>): unknown {
    return this.targets[kind]!(event, ctx);
  }

  /** Runs the callbacks `outcome` calls for; the outcome comes back with `callbackError` if one failed. */
  async settle<O extends SuccessOutcome<any> | FailureOutcome>(
    steps: CallbackSteps,
    worker: RouteWorker<any, any, any>,
    outcome: O,
  ): Promise<O> {
    const callbackError = await this.run(steps, worker, outcome);
    return callbackError === undefined ? outcome : { ...outcome, callbackError };
  }

  /** Runs `onSuccess` or `onFailure`, then `onSettled`; resolves with the first final error. */
  private async run(
    steps: CallbackSteps,
    worker: RouteWorker<any, any, any>,
    outcome: SuccessOutcome<any> | FailureOutcome,
  ): Promise<unknown> {
    const targets = this.targets;
    const input = worker.translated ? worker.translatedArgs : undefined;
    let firstError: unknown;
    if (outcome.kind === 'success' && targets.onSuccess) {
      const event: SuccessEvent<unknown, unknown> = {
        message: worker.args,
        input,
        result: outcome.value,
        attempts: outcome.attempts,
        meta: worker.meta,
      };
      firstError = await steps.startCallbackRoute(worker, 'onSuccess', event);
    }
    if (outcome.kind === 'failure' && targets.onFailure) {
      const event: FailureEvent<unknown> = {
        message: worker.args,
        input,
        error: outcome.error,
        reason: outcome.reason,
        attempts: outcome.attempts,
        meta: worker.meta,
      };
      firstError = await steps.startCallbackRoute(worker, 'onFailure', event);
    }
    if (targets.onSettled) {
      const event: SettledEvent<unknown, unknown> = {
        message: worker.args,
        input,
        outcome,
        meta: worker.meta,
      };
      const error = await steps.startCallbackRoute(worker, 'onSettled', event);
      if (firstError === undefined) firstError = error;
    }
    return firstError;
  }

  /**
   * Runs one callback, awaited, retried in place by {@link backoff} (a stop ends the sleep
   * between tries). Resolves with its final error, or undefined when it succeeded.
   */
  async start(
    env: RouteEnv,
    steps: CallbackSteps,
    original: RouteWorker<any, any, any>,
    kind: CallbackKind,
    event: unknown,
  ): Promise<unknown> {
    const policy = this.backoff;
    const tags = { ...env.metricTags, callback: kind };
    const task = original.delivery as Task;
    let last!: RouteWorker<any, any, any>;
    const runOnce = async (attempt: number): Promise<RouteWorker<any, any, any>> => {
      const worker = (last = await steps.getCallbackWorkerInstance(original, kind, event, attempt));
      await worker.run();
      env.metrics.increment('route.callbacks', 1, tags);
      if (env.events.active)
        env.events.emit({
          type: 'callback',
          entryId: original.delivery.entryId,
          callback: kind,
          attempt,
          at: env.clock.now(),
          failed: worker.failed,
          ...(worker.failed ? { error: worker.error } : {}),
        });
      if (worker.failed) env.metrics.increment('route.callback.failures', 1, tags);
      return worker;
    };
    let worker = await runOnce(0);
    if (worker.failed && policy !== undefined && !task.aborted && (await policy.canRetry(worker)))
      try {
        // the same retry path as the route's sync backoff; a stop ends the sleep between tries
        worker = (await policy.retry(worker, {
          sleep: ms => sleep(env.clock, ms, task.signal),
          rerun: (_previous, attempt) => runOnce(attempt),
          republish: () => Promise.reject(new RouteConfigError('callbacks retry in place')),
        })) as RouteWorker<any, any, any>;
      } catch {
        return last.error;
      }
    if (!worker.failed) return undefined;
    env.logger.warn(
      { err: worker.error, route: env.label, callback: kind },
      'route callback failed',
    );
    return worker.error;
  }
}
