/** The message's metadata (≙ micro_framework's `_meta`): travels with retries and republishes. */
export type Meta = Record<string, unknown>;

/** Why a failure ended the way it did. */
export type FailureReason =
  /** A translator rejected the message (terminal, never requeued). */
  | 'translation'
  /** The error matched `abortOn`, or did not match `retryOn` (terminal). */
  | 'not-retryable'
  /** The backoff's `maxRetries` were used up (terminal). */
  | 'retries-exhausted'
  /** The route has no backoff (terminal). */
  | 'no-backoff'
  /** The worker budget and its queue were full (not terminal: redeliver later). */
  | 'overloaded'
  /** An asynchronous backoff could not publish the retry (not terminal: redeliver the original). */
  | 'republish-failed'
  /** The message's deadline passed, before or while it ran (terminal, never retried). */
  | 'deadline-exceeded';

/** The target returned: respond / ack. */
export interface SuccessOutcome<R = unknown> {
  readonly kind: 'success';
  readonly value: R;
  /** Worker runs for this message so far, retries included (1 = first try). */
  readonly attempts: number;
  /** Set when an `onSuccess`/`onSettled` callback failed after its own retries (logged, not fatal). */
  readonly callbackError?: unknown;
}

/**
 * The work failed. `terminal: true`: the route is done with the message (retries exhausted, not
 * retryable, translation error, no backoff): the entrypoint dead-letters it (or answers 4xx/5xx).
 * `terminal: false`: the work was not done (overloaded, republish failed): redeliver it.
 */
export interface FailureOutcome {
  readonly kind: 'failure';
  readonly error: unknown;
  readonly terminal: boolean;
  readonly reason: FailureReason;
  readonly attempts: number;
  /** The message's metadata at the last attempt (retry count included). */
  readonly meta: Meta;
  /** Set when an `onFailure`/`onSettled` callback failed after its own retries. */
  readonly callbackError?: unknown;
}

/**
 * An asynchronous backoff published the retry (≙ micro_framework's `None`): ack the original,
 * the retry arrives later through `via`. `retryAt` is on the route's clock (ms).
 */
export interface DeferredOutcome {
  readonly kind: 'deferred';
  readonly retryAt: number;
  readonly delayMs: number;
  /** 1 for the first retry. */
  readonly attempt: number;
  /** Name of the entrypoint that carries the retry. */
  readonly via: string;
  readonly error: unknown;
}

/**
 * The work was cancelled: handed back unstarted at stop (`started: false`), or killed when a drain
 * timed out / aborted (`started: true`). Requeue it (it was not done).
 */
export interface CancelledOutcome {
  readonly kind: 'cancelled';
  readonly reason: unknown;
  readonly started: boolean;
  readonly attempts: number;
  readonly meta: Meta;
}

/** What happened to one message, settled by the entrypoint that delivered it. */
export type Outcome<R = unknown> =
  SuccessOutcome<R> | FailureOutcome | DeferredOutcome | CancelledOutcome;
