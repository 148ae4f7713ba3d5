import { isXError, sleep } from '@x/resilience';
import type { BackoffPolicy, RetryTools } from './backoffPolicy.js';
import type { Delivery, Entrypoint } from './entrypoint.js';
import { RepublishError } from './errors.js';
import { retryMeta } from './internal/retryMeta.js';
import type { Task } from './internal/task.js';
import type { DeferredOutcome, Meta } from './outcome.js';
import type { RouteEnv } from './routeEnv.js';
import type { RouteWorker } from './routeWorker.js';

/** @internal Lets `testRoute` carry asynchronous retries on its fake clock. */
export const TEST_REPUBLISHER = Symbol('routes.testRepublisher');

/** The overridable steps of a route that a retry goes through (`Route` has them). */
export interface RetrySteps<W extends RouteWorker<any, any, any>> {
  getWorkerInstance(args: any, meta: Meta, delivery: Delivery): W | Promise<W>;
  spawnWorker(worker: W): Promise<W>;
  /** @internal Set by `testRoute`: carries asynchronous retries instead of the entrypoints. */
  readonly [TEST_REPUBLISHER]: Entrypoint<any> | undefined;
}

/**
 * A route's retries with its backoff policy: a synchronous backoff sleeps (a stop ends the sleep)
 * and reruns the message in place, reusing its translation; an asynchronous one republishes it
 * through `via` (else the delivering entrypoint) with the retry count in its metadata. Records the
 * `route.retries` metric, the span's `retry` event and the `retry` route event.
 */
export class RouteRetries {
  constructor(
    private readonly env: RouteEnv,
    readonly policy: BackoffPolicy,
  ) {}

  /**
   * Retries the failed `worker`: resolves with the last worker (synchronous) or the `deferred`
   * outcome once the retry is published (asynchronous). A stop during a sleep, or a failed
   * publish, comes back as that worker failed with `CANCELLED` / `REPUBLISH_FAILED`.
   */
  async run<W extends RouteWorker<any, any, any>>(
    steps: RetrySteps<W>,
    task: Task,
    worker: W,
  ): Promise<W | DeferredOutcome> {
    try {
      return (await this.policy.retry(worker, this.tools(steps, task))) as W | DeferredOutcome;
    } catch (error) {
      if (isXError(error, 'CANCELLED') || isXError(error, 'REPUBLISH_FAILED')) {
        worker.error = error;
        return worker;
      }
      throw error;
    }
  }

  private tools<W extends RouteWorker<any, any, any>>(
    steps: RetrySteps<W>,
    task: Task,
  ): RetryTools {
    const env = this.env;
    return {
      sleep: async (ms, previous, attempt) => {
        this.note(task, previous, attempt, ms, 'sync');
        task.meta = retryMeta(previous.meta, attempt);
        task.waiting = true;
        try {
          await sleep(env.clock, ms, task.signal);
        } finally {
          task.waiting = false;
        }
      },
      rerun: async (previous, attempt) => {
        const next = await steps.getWorkerInstance(
          previous.args,
          retryMeta(previous.meta, attempt),
          task,
        );
        if (previous.translated) next.adoptTranslation(previous.translatedArgs);
        return steps.spawnWorker(next);
      },
      republish: async (previous, attempt, delayMs) => {
        const via = steps[TEST_REPUBLISHER] ?? this.policy.via ?? task.entrypoint;
        if (via?.republish === undefined)
          throw new RepublishError(
            `route ${env.label}: no entrypoint can carry asynchronous retries; give asyncBackoff({ via })`,
          );
        const meta = retryMeta(previous.meta, attempt);
        try {
          await via.republish(task, { message: previous.args, meta }, delayMs);
        } catch (cause) {
          throw new RepublishError(
            `route ${env.label}: could not republish retry ${attempt} through ${via.name}`,
            { cause },
          );
        }
        this.note(task, previous, attempt, delayMs, 'async');
        return {
          kind: 'deferred',
          retryAt: env.clock.now() + delayMs,
          delayMs,
          attempt,
          via: via.name,
          error: previous.error,
        };
      },
    };
  }

  private note(
    task: Task,
    previous: RouteWorker<any, any, any>,
    attempt: number,
    delayMs: number,
    mode: 'sync' | 'async',
  ): void {
    const env = this.env;
    env.metrics.increment('route.retries', 1, env.metricTags);
    task.span?.event('retry', {
      'x.attempt': attempt,
      'x.delay_ms': delayMs,
      'x.retry_mode': mode,
    });
    if (env.events.active)
      env.events.emit({
        type: 'retry',
        entryId: task.entryId,
        attempt,
        delayMs,
        mode,
        at: env.clock.now(),
        error: previous.error,
      });
  }
}
