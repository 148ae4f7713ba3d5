import {
  constantBackoff,
  exponentialBackoff,
  isXError,
  policyContext,
  retry,
  type Backoff,
  type BackoffContext,
  type RetryPolicy,
} from '@x/resilience';
import { RouteConfigError } from './errors.js';
import type { Entrypoint } from './entrypoint.js';
import type { DeferredOutcome } from './outcome.js';
import { checkKeys, checkMs } from './internal/options.js';
import type { RouteWorker } from './routeWorker.js';

/** An error class (matched with `instanceof`, so subclasses match too). */
export type ErrorClass = abstract new (...args: any[]) => unknown;

/** Which errors a rule applies to: a class, a list of classes (`instanceof`), or a predicate. */
export type ErrorMatcher = ErrorClass | readonly ErrorClass[] | ((error: unknown) => boolean);

/** Options shared by {@link syncBackoff} and {@link asyncBackoff}. */
export interface BackoffOptions {
  /** Retries after the first try: an integer >= 0 (0 = never retry) or `'infinite'`. Default 3. */
  readonly maxRetries?: number | 'infinite';
  /**
   * Delay before each retry, in ms: a number (constant) or any `@x/resilience` backoff
   * (`constantBackoff`, `linearBackoff`, `exponentialBackoff` with jitter, or a cockatiel
   * `IBackoffFactory<{ attempt, error }>`). Default `exponentialBackoff({ initialMs: 100, maxMs: 30_000 })`.
   */
  readonly delay?: number | Backoff;
  /** Only errors matching this are retried. Default: every error. */
  readonly retryOn?: ErrorMatcher;
  /** Errors matching this are never retried (checked before `retryOn`). Default: none. */
  readonly abortOn?: ErrorMatcher;
}

/** Options of {@link asyncBackoff}. */
export interface AsyncBackoffOptions extends BackoffOptions {
  /**
   * The entrypoint that carries the retries (≙ `AsyncBackOff` being a second entrypoint of the
   * route). Default: the entrypoint that delivered the message, which must support `republish`.
   */
  readonly via?: Entrypoint<any>;
}

/** What {@link BackoffPolicy.retry} needs from the route. */
export interface RetryTools {
  /** Waits `ms` before retry `attempt` on the route clock; rejects with `CANCELLED` when the route stops meanwhile. */
  sleep(ms: number, previous: RouteWorker<any, any, any>, attempt: number): Promise<void>;
  /** Runs the message again as retry number `attempt` (1-based) and returns the finished worker. */
  rerun(previous: RouteWorker<any, any, any>, attempt: number): Promise<RouteWorker<any, any, any>>;
  /** Publishes retry number `attempt` to run after `delayMs` and returns the deferred outcome. */
  republish(
    previous: RouteWorker<any, any, any>,
    attempt: number,
    delayMs: number,
  ): Promise<DeferredOutcome>;
}

const OPTION_KEYS = ['maxRetries', 'delay', 'retryOn', 'abortOn', 'via'];

/**
 * A route's retry policy (≙ micro_framework's `BackOff` / `AsyncBackOff`). `sync` retries in
 * place, sleeping on the route clock between tries; `async` republishes the message with a delay
 * through an entrypoint and settles the current delivery as `deferred`. Errors match by
 * `instanceof` or predicate; translation errors, cancellations and errors named
 * `UnrecoverableError` (BullMQ's) are never retried. There is no interval gate: a retry is due
 * once its delay has passed. Subclass and override `canRetry`, `delayFor` or `retry` to customise.
 */
export class BackoffPolicy {
  readonly mode: 'sync' | 'async';
  /** Retries allowed after the first try; `Infinity` for `'infinite'`. */
  readonly maxRetries: number;
  readonly via: Entrypoint<any> | undefined;
  private readonly delay: Backoff;
  private readonly retryOn: ((error: unknown) => boolean) | undefined;
  private readonly abortOn: ((error: unknown) => boolean) | undefined;
  /**
   * The `@x/resilience` retry policy whose schedule decides each retry's delay (its `onRetry` /
   * `onGiveUp` events see every retry). `canRetry` already decided that the error is retried and
   * retries are left, so it has no limit of its own and honours no `Retry-After` (micro_framework's
   * semantics: the route's delay only).
   */
  readonly policy: RetryPolicy;

  constructor(mode: 'sync' | 'async', options: AsyncBackoffOptions = {}) {
    if (mode !== 'sync' && mode !== 'async')
      throw new RouteConfigError(`backoff mode must be 'sync' or 'async', got ${String(mode)}`);
    checkKeys(options, mode === 'async' ? OPTION_KEYS : OPTION_KEYS.slice(0, 4), `${mode}Backoff`);
    const { maxRetries = 3, delay, retryOn, abortOn, via } = options;
    if (maxRetries === 'infinite') this.maxRetries = Infinity;
    else if (Number.isInteger(maxRetries) && maxRetries >= 0) this.maxRetries = maxRetries;
    else
      throw new RouteConfigError(
        `maxRetries must be an integer >= 0 or 'infinite', got ${String(maxRetries)}`,
      );
    this.mode = mode;
    this.via = via;
    if (via !== undefined && typeof via.republish !== 'function')
      throw new RouteConfigError(`asyncBackoff via: entrypoint ${via.name} cannot republish`);
    if (delay === undefined) this.delay = exponentialBackoff({ initialMs: 100, maxMs: 30_000 });
    else if (typeof delay === 'number' || typeof delay === 'string')
      this.delay = constantBackoff(checkMs(delay, 0, 'delay'));
    else if (delay !== null && typeof delay === 'object' && typeof delay.next === 'function')
      this.delay = delay;
    else throw new RouteConfigError('backoff delay must be a number of ms or a backoff factory');
    this.retryOn = retryOn === undefined ? undefined : matcher(retryOn, 'retryOn');
    this.abortOn = abortOn === undefined ? undefined : matcher(abortOn, 'abortOn');
    this.policy = retry({
      maxRetries: Infinity,
      retryOn: () => true,
      respectRetryAfter: false,
      backoff: { next: this.step },
    });
  }

  /** The message's retry count when its current retry sequence began (read by {@link step}). */
  private base = 0;

  /**
   * The backoff the retry schedule steps through: {@link delayFor} of the absolute retry number
   * (the schedule counts from 1 for each message; `base` is set right before it steps).
   */
  private readonly step = (context: BackoffContext): ReturnType<Backoff['next']> => ({
    duration: this.delayFor(this.base + context.attempt, context.error),
    next: this.step,
  });

  /**
   * False for errors that are never retried: translation failures, cancellations, errors named
   * `UnrecoverableError`, `abortOn` matches, and (when `retryOn` is set) anything it does not match.
   */
  isRetryable(error: unknown): boolean {
    if (isXError(error, 'TRANSLATION_FAILED') || isXError(error, 'CANCELLED')) return false;
    if (error instanceof Error && error.name === 'UnrecoverableError') return false;
    if (this.abortOn?.(error)) return false;
    return this.retryOn === undefined || this.retryOn(error);
  }

  /** ≙ `can_retry`: the worker failed with a retryable error and retries are left. */
  canRetry(worker: RouteWorker<any, any, any>): boolean | Promise<boolean> {
    return worker.failed && worker.attempt < this.maxRetries && this.isRetryable(worker.error);
  }

  /** Delay in ms before retry number `retry` (1-based) after `error`. */
  delayFor(retry: number, error: unknown): number {
    // Backoff factories are iterators (exponential growth and decorrelated jitter keep state), so
    // replay them up to this retry; after 64 steps every bounded backoff has reached its cap.
    const first = Math.max(1, retry - 63);
    let backoff = this.delay.next({ attempt: first, error });
    for (let attempt = first + 1; attempt <= retry; attempt++)
      backoff = backoff.next({ attempt, error });
    const ms = backoff.duration;
    return Number.isFinite(ms) && ms > 0 ? ms : 0;
  }

  /**
   * ≙ `retry` + `execute_retry`. Sync: sleep, rerun, repeat while `canRetry`; resolves with the
   * last worker. Async: publish the retry and resolve with the `deferred` outcome.
   */
  async retry(
    worker: RouteWorker<any, any, any>,
    tools: RetryTools,
  ): Promise<RouteWorker<any, any, any> | DeferredOutcome> {
    // one schedule per message: retry numbers count on from the message's own (`meta` retry count)
    const schedule = this.policy.schedule(policyContext());
    let current = worker;
    for (;;) {
      const attempt = current.attempt + 1;
      this.base = worker.attempt;
      const delayMs = schedule.next(current.error);
      if (delayMs < 0) return current;
      if (this.mode === 'async') return tools.republish(current, attempt, delayMs);
      await tools.sleep(delayMs, current, attempt);
      current = await tools.rerun(current, attempt);
      if (!(await this.canRetry(current))) return current;
    }
  }
}

function matcher(m: ErrorMatcher, name: string): (error: unknown) => boolean {
  if (Array.isArray(m)) {
    const classes = m as readonly ErrorClass[];
    for (const c of classes)
      if (typeof c !== 'function') throw new RouteConfigError(`${name} must list error classes`);
    return error => classes.some(c => error instanceof c);
  }
  if (typeof m !== 'function')
    throw new RouteConfigError(`${name} must be an error class, a list of them or a predicate`);
  // A class (has a prototype and is not an arrow or a plain predicate) matches by instanceof.
  if (isClass(m)) return error => error instanceof (m as ErrorClass);
  return m as (error: unknown) => boolean;
}

function isClass(fn: unknown): boolean {
  if (typeof fn !== 'function') return false;
  if (fn === Error || fn.prototype instanceof Error) return true;
  return /^class[\s{]/.test(Function.prototype.toString.call(fn));
}

/** A {@link BackoffPolicy} that retries in place (≙ a `BackOff` whose `execute_retry` sleeps and reruns). */
export function syncBackoff(options: BackoffOptions = {}): BackoffPolicy {
  return new BackoffPolicy('sync', options);
}

/**
 * A {@link BackoffPolicy} that republishes the message with a delay through an entrypoint
 * (≙ `AsyncBackOff`): durable when that entrypoint is (BullMQ delayed job); the current delivery is
 * acked as `deferred` only after the publish succeeded.
 */
export function asyncBackoff(options: AsyncBackoffOptions = {}): BackoffPolicy {
  return new BackoffPolicy('async', options);
}
