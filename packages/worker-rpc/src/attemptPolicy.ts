import {
  HedgePolicy,
  RetryBudget,
  RetryBudgetExhaustedError,
  RetryPolicy,
  exponentialBackoff,
  pipeline,
  policyContext,
  type Backoff,
  type Clock,
  type HedgeOptions,
  type Policy,
  type PolicyContext,
  type PolicyEvent,
} from '@x/resilience';
import { WorkerRpcError, isWorkerRpcError } from './errors.js';
import { positiveInt, validateTimeout } from './internal/optionChecks.js';
import type { WorkerConnectionEvent, WorkerRetryOptions } from './workerConnectionOptions.js';

/** Most attempts of one call (the wire's attempt number is one byte). */
export const MAX_ATTEMPTS = 255;

/** Options of {@link AttemptPolicy}: the connection's `retry` and `hedge`, and where events go. */
export interface AttemptPolicyOptions {
  readonly retry?: WorkerRetryOptions | number | boolean;
  readonly hedge?: HedgeOptions | HedgePolicy;
  readonly clock: Clock;
  /** Random source of the default backoff's jitter. */
  readonly random?: () => number;
  /** Receives the connection's `retry` and `giveUp` events. */
  readonly emit: (event: WorkerConnectionEvent) => void;
}

/**
 * The one retry and hedge path of a worker connection, built on `@x/resilience`: a
 * `RetryPolicy` (backoff, `Retry-After`, the shared retry budget, the call's deadline), wrapped
 * around a `HedgePolicy` when hedging is on, run with a `policyContext` of the call's deadline and
 * signal. One policy per number of attempts (a call may set its own `maxAttempts`). A call that
 * can neither retry nor hedge makes its single attempt without any policy.
 */
export class AttemptPolicy {
  /** Attempts of a retried call, the first included (`retry.maxAttempts`). */
  readonly maxAttempts: number;
  /** `retry.calls === 'all'`: every call is idempotent unless it or its method says otherwise. */
  readonly allCalls: boolean;
  /** Timeout of one attempt (`Infinity`: none). */
  readonly attemptTimeoutMs: number;
  readonly budget: RetryBudget | undefined;
  readonly hedge: HedgePolicy | undefined;
  private readonly backoff: Backoff;
  private readonly retryOn: (error: unknown, attempt: number) => boolean;
  private readonly clock: Clock;
  private readonly emit: (event: WorkerConnectionEvent) => void;
  private readonly policies = new Map<number, Policy>();

  constructor(options: AttemptPolicyOptions) {
    this.clock = options.clock;
    this.emit = options.emit;
    const retry: WorkerRetryOptions =
      options.retry === true
        ? {}
        : typeof options.retry === 'number'
          ? { maxAttempts: options.retry }
          : options.retry || { maxAttempts: 1 };
    this.maxAttempts = Math.min(
      MAX_ATTEMPTS,
      positiveInt(retry.maxAttempts ?? 3, 'retry.maxAttempts'),
    );
    if (retry.calls !== undefined && retry.calls !== 'idempotent' && retry.calls !== 'all')
      throw new RangeError(
        `retry.calls must be 'idempotent' or 'all', got ${JSON.stringify(retry.calls)}`,
      );
    this.allCalls = retry.calls === 'all';
    this.attemptTimeoutMs =
      retry.attemptTimeoutMs === undefined
        ? Infinity
        : validateTimeout(retry.attemptTimeoutMs, 'retry.attemptTimeoutMs');
    this.budget =
      retry.budget === false ? undefined : (retry.budget ?? new RetryBudget({ clock: this.clock }));
    this.backoff =
      retry.backoff ??
      exponentialBackoff({
        initialMs: 25,
        maxMs: 1000,
        jitter: 'full',
        random: options.random ?? Math.random,
      });
    const retryOn =
      retry.retryOn ?? ((error: unknown) => isWorkerRpcError(error) && error.retryable);
    // the call's own deadline is final; an attempt's timeout is retried
    this.retryOn = (error, attempt) =>
      !(isWorkerRpcError(error) && error.code === 'TIMEOUT' && error.scope === 'call') &&
      retryOn(error, attempt);
    if (options.hedge)
      this.hedge =
        options.hedge instanceof HedgePolicy
          ? options.hedge
          : new HedgePolicy({ ...options.hedge, clock: this.clock });
  }

  /** Whether a call of `maxAttempts` attempts runs through a policy (retries or hedges). */
  applies(maxAttempts: number): boolean {
    return maxAttempts > 1 || this.hedge !== undefined;
  }

  /**
   * Runs `attempt` under the retry (and hedge) policy of `maxAttempts` until one succeeds, the
   * policy gives up (rejecting with the error to fail the call with) or `signal` aborts.
   */
  run(
    maxAttempts: number,
    deadline: number,
    signal: AbortSignal,
    attempt: (context: PolicyContext) => Promise<unknown>,
  ): Promise<unknown> {
    // a retry policy deposits into the budget itself; a call that only hedges counts here
    if (maxAttempts <= 1) this.budget?.deposit();
    return this.policyFor(maxAttempts)
      .run(attempt, policyContext({ signal, deadline }))
      .catch((error: unknown) => Promise.reject(finalError(error)));
  }

  private policyFor(maxAttempts: number): Policy {
    const attempts = Math.min(MAX_ATTEMPTS, maxAttempts);
    let policy = this.policies.get(attempts);
    if (policy !== undefined) return policy;
    if (attempts <= 1) {
      policy = this.hedge!;
    } else {
      const retry = new RetryPolicy({
        maxRetries: attempts - 1,
        backoff: this.backoff,
        retryOn: this.retryOn,
        ...(this.budget ? { budget: this.budget } : {}),
        respectRetryAfter: true,
        clock: this.clock,
      });
      retry.onEvent(event => this.onRetryEvent(event));
      policy = this.hedge ? pipeline(retry, this.hedge) : retry;
    }
    this.policies.set(attempts, policy);
    return policy;
  }

  private onRetryEvent(event: PolicyEvent): void {
    if (event.type === 'retry' && isWorkerRpcError(event.error)) {
      this.emit({
        type: 'retry',
        method: event.error.method ?? '',
        attempt: event.attempt,
        delayMs: event.delayMs,
        error: event.error,
      });
    } else if (
      event.type === 'giveUp' &&
      event.reason !== 'aborted' &&
      isWorkerRpcError(event.error)
    ) {
      this.emit({
        type: 'giveUp',
        method: event.error.method ?? '',
        attempts: event.attempt + 1,
        error: event.error,
      });
    }
  }
}

/**
 * The error a call fails with once its policy gave up: the last attempt's error; when the retry
 * budget refused, that error's code with the reason it was not retried.
 */
function finalError(error: unknown): WorkerRpcError {
  if (isWorkerRpcError(error)) return error;
  const last = error instanceof RetryBudgetExhaustedError ? error.cause : undefined;
  if (isWorkerRpcError(last))
    return new WorkerRpcError(
      last.code,
      `${last.message} (not retried: ${(error as Error).message})`,
      {
        cause: error,
        method: last.method,
        endpoint: last.endpoint,
        attempt: last.attempt,
        retryable: last.retryable,
        remote: last.remote,
      },
    );
  return new WorkerRpcError('INTERNAL', String((error as Error)?.message ?? error), {
    cause: error,
  });
}
