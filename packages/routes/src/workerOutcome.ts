import { isXError } from '@x/resilience';
import type { BackoffPolicy } from './backoffPolicy.js';
import type { Delivery } from './entrypoint.js';
import type { CancelledError } from './errors.js';
import type { Task } from './internal/task.js';
import type { CancelledOutcome, FailureOutcome, FailureReason, SuccessOutcome } from './outcome.js';
import type { RouteWorker } from './routeWorker.js';

/**
 * The explicit outcome of a finished worker (its retries done): `success`; `cancelled` (stopped
 * or handed back); a non-terminal `failure` when it never ran (`overloaded`) or its retry could
 * not be published (`republish-failed`); else a terminal `failure` whose reason says why no retry
 * follows. Only `success` and terminal failures run the callbacks ({@link runsCallbacks}).
 */
export function workerOutcome<R>(
  delivery: Delivery,
  worker: RouteWorker<any, any, R>,
  backoff: BackoffPolicy | undefined,
): SuccessOutcome<R> | FailureOutcome | CancelledOutcome {
  if (!worker.failed)
    return { kind: 'success', value: worker.result as R, attempts: worker.attempt + 1 };
  const attempts = worker.ran ? worker.attempt + 1 : worker.attempt;
  const error = worker.error;
  if (isXError(error, 'CANCELLED'))
    return {
      kind: 'cancelled',
      reason: error,
      started: (error as CancelledError).started,
      attempts,
      meta: (delivery as Task).meta ?? worker.meta,
    };
  const meta = worker.meta;
  if (!worker.ran)
    return { kind: 'failure', error, terminal: false, reason: 'overloaded', attempts, meta };
  if (isXError(error, 'REPUBLISH_FAILED'))
    return { kind: 'failure', error, terminal: false, reason: 'republish-failed', attempts, meta };
  const reason: FailureReason = isXError(error, 'TRANSLATION_FAILED')
    ? 'translation'
    : isXError(error, 'DEADLINE_EXCEEDED')
      ? 'deadline-exceeded'
      : backoff === undefined
        ? 'no-backoff'
        : !backoff.isRetryable(error)
          ? 'not-retryable'
          : 'retries-exhausted';
  return { kind: 'failure', error, terminal: true, reason, attempts, meta };
}

/** True for the outcomes that run the callbacks: success and terminal failures. */
export function runsCallbacks(
  outcome: SuccessOutcome<unknown> | FailureOutcome | CancelledOutcome,
): outcome is SuccessOutcome<any> | FailureOutcome {
  return outcome.kind === 'success' || (outcome.kind === 'failure' && outcome.terminal);
}

/** The `cancelled` outcome of a task stopped by `reason` (killed, or an overridden step threw it). */
export function cancelledOutcome(task: Task, reason: unknown): CancelledOutcome {
  return {
    kind: 'cancelled',
    reason,
    started: task.started,
    attempts: task.attempts,
    meta: task.meta,
  };
}
