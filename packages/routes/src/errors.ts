import { XError, type XErrorOptions } from '@x/resilience';

/** Every code thrown by `@x/routes` (each is listed in the README). */
export type RoutesErrorCode =
  | 'INVALID_OPTIONS'
  | 'ROUTE_STOPPED'
  | 'TRANSLATION_FAILED'
  | 'CANCELLED'
  | 'DEPENDENCY_FAILED'
  | 'REPUBLISH_FAILED'
  | 'QUEUE_FULL'
  | 'BAD_REQUEST'
  | 'PAYLOAD_TOO_LARGE'
  | 'METHOD_NOT_ALLOWED'
  | 'OPTIONAL_DEPENDENCY_MISSING'
  | 'BROKER_UNAVAILABLE'
  | 'DEADLINE_EXCEEDED';

/** Base class of the errors of `@x/routes`: an `XError` with a {@link RoutesErrorCode}. */
export class RoutesError extends XError {
  declare readonly code: RoutesErrorCode;
  constructor(code: RoutesErrorCode, message: string, options?: XErrorOptions) {
    super(code, message, options);
  }
}

/** Options or arguments given to a constructor or factory are invalid (`INVALID_OPTIONS`). */
export class RouteConfigError extends RoutesError {
  constructor(message: string, options?: XErrorOptions) {
    super('INVALID_OPTIONS', message, options);
  }
}

/** `startRoute` was called after the route stopped taking work (`ROUTE_STOPPED`). */
export class RouteStoppedError extends RoutesError {
  constructor(readonly route: string) {
    super('ROUTE_STOPPED', `route ${route} is stopped`);
  }
}

/**
 * A translator rejected the message (`TRANSLATION_FAILED`). Always terminal: the message goes to
 * the dead letter, never back to the queue. `index` is the translator's position in the chain.
 */
export class TranslationError extends RoutesError {
  /**
   * What a schema refused, when it said: each issue's dotted `path` (`''` for the value itself)
   * and `message` (`expected …, received …` for a {@link validator}). The HTTP entrypoint sends
   * them in its 400 answer.
   */
  readonly issues: readonly TranslationIssue[] | undefined;

  constructor(
    message: string,
    readonly index = 0,
    readonly translator = 'translator',
    options?: XErrorOptions & { readonly issues?: readonly TranslationIssue[] },
  ) {
    super('TRANSLATION_FAILED', message, options);
    this.issues = options?.issues;
  }
}

/** One problem a schema found in a message (see {@link TranslationError.issues}). */
export interface TranslationIssue {
  /** Dotted path of the refused field, `''` for the whole value. */
  readonly path: string;
  readonly message: string;
}

/**
 * The work was cancelled (`CANCELLED`): handed back unstarted when a route stopped, killed when a
 * drain timed out, or aborted by the entrypoint. `started` tells whether the target ever ran.
 */
export class CancelledError extends RoutesError {
  constructor(
    message: string,
    readonly started: boolean,
    options?: XErrorOptions,
  ) {
    super('CANCELLED', message, options);
  }
}

/** A dependency's `workerSetup` or `get` failed for one worker (`DEPENDENCY_FAILED`). */
export class DependencyError extends RoutesError {
  constructor(
    readonly dependency: string,
    options?: XErrorOptions,
  ) {
    super('DEPENDENCY_FAILED', `dependency ${dependency} failed`, options);
  }
}

/**
 * An asynchronous backoff could not publish the retry (`REPUBLISH_FAILED`). The outcome is a
 * non-terminal failure: the entrypoint requeues the original, so the message is not lost.
 */
export class RepublishError extends RoutesError {
  constructor(message: string, options?: XErrorOptions) {
    super('REPUBLISH_FAILED', message, options);
  }
}

/** The in-memory queue holds `maxLength` messages already (`QUEUE_FULL`). */
export class QueueFullError extends RoutesError {
  constructor(
    readonly queue: string,
    readonly maxLength: number,
  ) {
    super('QUEUE_FULL', `queue ${queue} is full (${maxLength} messages)`);
  }
}

/** A malformed HTTP request: `BAD_REQUEST` (400), `PAYLOAD_TOO_LARGE` (413), `METHOD_NOT_ALLOWED` (405). */
export class HttpRequestError extends RoutesError {
  constructor(
    code: 'BAD_REQUEST' | 'PAYLOAD_TOO_LARGE' | 'METHOD_NOT_ALLOWED',
    readonly status: 400 | 405 | 413,
    message: string,
    options?: XErrorOptions,
  ) {
    super(code, message, options);
  }
}

/** An optional peer dependency (`bullmq`) is not installed (`OPTIONAL_DEPENDENCY_MISSING`). */
export class OptionalDependencyError extends RoutesError {
  constructor(
    readonly dependency: string,
    options?: XErrorOptions,
  ) {
    super(
      'OPTIONAL_DEPENDENCY_MISSING',
      `the optional peer dependency '${dependency}' is not installed: npm install ${dependency}`,
      options,
    );
  }
}

/**
 * The broker of a queue entrypoint (Redis for BullMQ) cannot be reached in time
 * (`BROKER_UNAVAILABLE`): `start()` found no connection within `startTimeoutMs`, or an operation
 * (`publish`, ...) got no answer within `commandTimeoutMs` or failed because the connection is
 * down. `url` never carries a password. HTTP 503; retry after `retryAfterMs`.
 */
export class BrokerUnavailableError extends RoutesError {
  readonly status = 503;
  constructor(
    /** `'redis'`. */
    readonly broker: string,
    /** Where the broker was expected, password removed. */
    readonly url: string,
    /** `'start'`, `'publish'`, ... */
    readonly operation: string,
    message: string,
    readonly retryAfterMs = 1000,
    options?: XErrorOptions,
  ) {
    super(
      'BROKER_UNAVAILABLE',
      `${broker} at ${url} is unavailable (${operation}): ${message}`,
      options,
    );
  }
}

/**
 * The message's deadline (its caller's budget: an HTTP `x-request-timeout-ms`, a BullMQ job's
 * `deadline`) passed before the route finished, or before it started (`started: false`): nobody
 * waits for the result any more. Terminal (never retried): HTTP 504, a queue dead-letters it.
 */
export class MessageDeadlineError extends RoutesError {
  readonly status = 504;
  constructor(
    /** Whether the target had started when the deadline passed. */
    readonly started: boolean,
    message = started
      ? 'the message deadline passed while the route was running'
      : 'the message deadline passed before the route started',
    options?: XErrorOptions,
  ) {
    super('DEADLINE_EXCEEDED', message, options);
  }
}
