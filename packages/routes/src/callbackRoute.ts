import type { DependencyMap, DepsOf } from './dependency.js';
import { RouteConfigError } from './errors.js';
import { Route } from './route.js';
import type { FailureEvent } from './routeEvent.js';
import type { CallbackTarget, RouteOptions } from './routeOptions.js';

/** Options of a {@link CallbackRoute}: a route plus the errback. */
export interface CallbackRouteOptions<
  In,
  Out,
  R,
  D extends DependencyMap = DependencyMap,
> extends RouteOptions<In, Out, R, D> {
  /** Runs after a failure that will not be retried (≙ `callback_target`): `(event, ctx)`. */
  readonly callbackTarget: CallbackTarget<FailureEvent<Out>, DepsOf<D>>;
}

/**
 * micro_framework's `CallbackRoute`, fixed: the callback target is wrapped like any target (a
 * function or a class), awaited before the entrypoint settles, run once after retries are
 * exhausted or on a terminal failure, with its own retry policy (`callbacks.backoff`), and its
 * failure never re-triggers it. Same as a {@link Route} with `callbacks.onFailure`.
 */
export class CallbackRoute<
  In = unknown,
  Out = unknown,
  R = unknown,
  D extends DependencyMap = DependencyMap,
> extends Route<In, Out, R, D> {
  readonly callbackTarget: CallbackTarget<FailureEvent<Out>, DepsOf<D>>;

  constructor(options: CallbackRouteOptions<In, Out, R, D>) {
    if (options === null || typeof options !== 'object')
      throw new RouteConfigError('CallbackRoute: options must be an object');
    const { callbackTarget, ...rest } = options;
    if (callbackTarget === undefined)
      throw new RouteConfigError('CallbackRoute needs a callbackTarget');
    if (rest.callbacks?.onFailure !== undefined)
      throw new RouteConfigError(
        'CallbackRoute: give callbackTarget or callbacks.onFailure, not both',
      );
    super({ ...rest, callbacks: { ...rest.callbacks, onFailure: callbackTarget } });
    this.callbackTarget = callbackTarget;
  }
}
