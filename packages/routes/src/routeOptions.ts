import type { Clock, Logger, Metrics } from '@x/resilience';
import type { BackoffPolicy } from './backoffPolicy.js';
import type { CallbackWorkerClass } from './callbackWorker.js';
import type { DependencyMap, DepsOf } from './dependency.js';
import type { Entrypoint, MessageOf } from './entrypoint.js';
import type { FailureEvent, SettledEvent, SuccessEvent } from './routeEvent.js';
import type { RouteWorkerClass } from './routeWorker.js';
import type { ChainOutput, TranslatorLike, ValidChain } from './translator.js';
import type { WorkerContext } from './workerContext.js';

/** A target written as a function: gets the translated message and the worker context. */
export type TargetFn<Out, R, Deps = Readonly<Record<string, unknown>>> = (
  input: Out,
  ctx: WorkerContext<Deps>,
) => R | PromiseLike<R>;

/** A target class: one instance per worker (nameko), dependencies set as its properties, `methodName` called. */
export type TargetClass = new () => any;

/** What a route runs (≙ `target`): a function, or a class with `methodName` (default `'call'`). */
export type Target<Out, R, Deps = Readonly<Record<string, unknown>>> =
  TargetFn<Out, R, Deps> | TargetClass;

/** A callback target: a function `(event, ctx)` or a class with a `call(event, ctx)` method. */
export type CallbackTarget<E, Deps> =
  ((event: E, ctx: WorkerContext<Deps>) => unknown) | TargetClass;

/**
 * `CallbackRoute` generalised. Each callback runs at most once per settled message (after its own
 * retries), is awaited before the entrypoint settles, never uses the route's backoff, and never
 * triggers a callback when it fails (its error is logged and put on the outcome as `callbackError`).
 */
export interface Callbacks<Out, R, D extends DependencyMap = DependencyMap> {
  /** After a failure that will not be retried (≙ `callback_target`). */
  readonly onFailure?: CallbackTarget<FailureEvent<Out>, DepsOf<D>>;
  readonly onSuccess?: CallbackTarget<SuccessEvent<Out, R>, DepsOf<D>>;
  readonly onSettled?: CallbackTarget<SettledEvent<Out, R>, DepsOf<D>>;
  /** The callbacks' own retry policy (a {@link syncBackoff}). Default: no retry. */
  readonly backoff?: BackoffPolicy;
  /** Deadline of each callback run in ms. Default: none. */
  readonly timeoutMs?: number;
}

/** Options of a {@link Route}. */
export interface RouteOptions<In, Out, R, D extends DependencyMap = DependencyMap> {
  /** The function, or class with `methodName`, that handles a message. */
  readonly target: Target<Out, R, DepsOf<D>>;
  /** One or several entrypoints sharing this route's translators, backoff and metrics. Default none. */
  readonly entrypoint?: Entrypoint<In> | readonly Entrypoint<In>[];
  /** Translator chain: each gets the previous output; a failure is terminal. Default none. */
  readonly translators?: TranslatorLike<any, any> | readonly TranslatorLike<any, any>[];
  /** Method called on a class target. Default `'call'`. */
  readonly methodName?: string;
  /**
   * Retry policy: {@link syncBackoff} or {@link asyncBackoff}. Default none (a failure is terminal).
   * An async backoff's `via` entrypoint is added to the route's entrypoints when not listed.
   */
  readonly backoff?: BackoffPolicy;
  /** `onFailure` / `onSuccess` / `onSettled` with their own retry policy. */
  readonly callbacks?: Callbacks<Out, R, D>;
  /** Dependencies injected as `ctx.deps[name]` (nameko lifecycle). */
  readonly dependencies?: D;
  /** Metric and call-id label. Default `<RouteClass>__<target name>`, e.g. `Route__handleOrder`. */
  readonly metricLabel?: string;
  /** Worker class (≙ `worker_class`). Default {@link RouteWorker}. */
  readonly workerClass?: RouteWorkerClass;
  /** Callback worker class (≙ `callback_worker_class`). Default {@link CallbackWorker}. */
  readonly callbackWorkerClass?: CallbackWorkerClass;
  /** Workers of this route running at once, inside the context's `maxWorkers`. Default: the context's budget only. */
  readonly concurrency?: number;
  /** Deadline of each attempt in ms (aborts `ctx.signal`, fails with `TIMEOUT`). Default none. */
  readonly timeoutMs?: number;
  /** Overrides of the context's clock, metrics and logger. */
  readonly clock?: Clock;
  readonly metrics?: Metrics;
  readonly logger?: Logger;
}

/** The message type of a route built from entrypoints `E` (`unknown` without entrypoints). */
export type RouteInput<E> = [MessageOf<E>] extends [never] ? unknown : MessageOf<E>;

/** Options of {@link route}: {@link RouteOptions} with the types inferred from the entrypoints and the chain. */
export type InferredRouteOptions<E, T, R, D extends DependencyMap> = Omit<
  RouteOptions<RouteInput<E>, ChainOutput<T, RouteInput<E>>, R, D>,
  'entrypoint' | 'translators' | 'target' | 'callbacks'
> & {
  readonly entrypoint?: E;
  readonly translators?: T & ValidChain<T, RouteInput<E>>;
  readonly target: Target<ChainOutput<T, RouteInput<E>>, R, DepsOf<D>>;
  readonly callbacks?: Callbacks<ChainOutput<T, RouteInput<E>>, R, D>;
};
