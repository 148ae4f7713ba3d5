import { XError, type XErrorOptions } from '@x/resilience';

/** Every code thrown by `@x/dispatcher`. */
export type DispatcherErrorCode =
  | 'MODULE_DOES_NOT_EXIST'
  | 'VERSION_DOES_NOT_EXIST'
  | 'INVALID_INSTANCE_ID'
  | 'NOT_SUPPORTED_WITH_AUTO_SCALING'
  | 'BACKGROUND_THREAD_LIMIT_REACHED'
  | 'VERSION_ALREADY_STARTED'
  | 'VERSION_ALREADY_STOPPED'
  | 'VERSION_STOPPED'
  | 'NO_CAPACITY'
  | 'DEADLINE_EXCEEDED'
  | 'INVALID_DISPATCH_RULE'
  | 'INVALID_REQUEST'
  | 'PAYLOAD_TOO_LARGE'
  | 'TOO_MANY_HEADERS'
  | 'TOO_MANY_ATTEMPTS'
  | 'BACKEND_ERROR'
  | 'INSTANCE_START_FAILED'
  | 'INVALID_CONFIG'
  | 'EVENT_LIMIT_REACHED'
  | 'MISSING_DEPENDENCY'
  | 'EVENT_STORE_UNAVAILABLE'
  | 'DISPATCHER_CLOSED';

/**
 * Base class of every error thrown by `@x/dispatcher`: a stable `code` and the HTTP `status` the
 * front door answers with when this error ends a request.
 */
export class DispatcherError extends XError {
  declare readonly code: DispatcherErrorCode;
  /** HTTP status the front door uses for this error. */
  readonly status: number;
  constructor(code: DispatcherErrorCode, status: number, message: string, options?: XErrorOptions) {
    super(code, message, options);
    this.status = status;
  }
}

/** The module does not exist (Modules API: `INVALID_MODULE`). HTTP 404. */
export class ModuleDoesNotExistError extends DispatcherError {
  constructor(readonly module: string) {
    super('MODULE_DOES_NOT_EXIST', 404, `module ${JSON.stringify(module)} does not exist`);
  }
}

/** The version does not exist in the module (Modules API: `INVALID_VERSION`). HTTP 404. */
export class VersionDoesNotExistError extends DispatcherError {
  constructor(
    readonly module: string,
    readonly version: string,
  ) {
    super(
      'VERSION_DOES_NOT_EXIST',
      404,
      `version ${JSON.stringify(version)} of module ${JSON.stringify(module)} does not exist`,
    );
  }
}

/**
 * The instance id is not valid for the module/version, or the version uses automatic scaling
 * (Modules API: `INVALID_INSTANCES`). HTTP 404.
 */
export class InvalidInstanceIdError extends DispatcherError {
  constructor(
    readonly module: string,
    readonly version: string,
    readonly instance: string,
    reason = 'no such instance',
  ) {
    super(
      'INVALID_INSTANCE_ID',
      404,
      `invalid instance ${JSON.stringify(instance)} of ${module}/${version}: ${reason}`,
    );
  }
}

/**
 * The operation needs addressable instances or a fixed instance count, and the version uses
 * automatic scaling. HTTP 400.
 */
export class NotSupportedWithAutoScalingError extends DispatcherError {
  constructor(
    readonly module: string,
    readonly version: string,
    readonly operation: string,
  ) {
    super(
      'NOT_SUPPORTED_WITH_AUTO_SCALING',
      400,
      `${operation} is not supported: ${module}/${version} uses automatic scaling`,
    );
  }
}

/** Every background slot (`maxBackgroundThreads`) of the instance is taken. HTTP 503. */
export class BackgroundThreadLimitReachedError extends DispatcherError {
  constructor(
    readonly module: string,
    readonly version: string,
    readonly instance: string,
    readonly limit: number,
  ) {
    super(
      'BACKGROUND_THREAD_LIMIT_REACHED',
      503,
      `instance ${instance} of ${module}/${version} runs its ${limit} background requests already`,
    );
  }
}

/** `startVersion` on a version that is running (Modules API: `UNEXPECTED_STATE`). HTTP 409. */
export class VersionAlreadyStartedError extends DispatcherError {
  constructor(
    readonly module: string,
    readonly version: string,
  ) {
    super('VERSION_ALREADY_STARTED', 409, `${module}/${version} is already started`);
  }
}

/** `stopVersion` on a version that is stopped (Modules API: `UNEXPECTED_STATE`). HTTP 409. */
export class VersionAlreadyStoppedError extends DispatcherError {
  constructor(
    readonly module: string,
    readonly version: string,
  ) {
    super('VERSION_ALREADY_STOPPED', 409, `${module}/${version} is already stopped`);
  }
}

/** A request was routed to a version stopped with `stopVersion`. HTTP 503. */
export class VersionStoppedError extends DispatcherError {
  constructor(
    readonly module: string,
    readonly version: string,
  ) {
    super(
      'VERSION_STOPPED',
      503,
      `${module}/${version} is stopped; start it with startVersion before sending requests`,
    );
  }
}

/** What ran out when a {@link NoCapacityError} was thrown. */
export type CapacityDimension =
  'requests' | 'instances' | 'pending-latency' | 'async-requests' | 'background';

/**
 * No instance could take the request in time (`maxPendingLatencyMs`), the waiting queue is full,
 * or the async request queue is full. `retryAfterMs` feeds the `Retry-After` header. HTTP 503.
 */
export class NoCapacityError extends DispatcherError {
  constructor(
    message: string,
    readonly dimension: CapacityDimension,
    readonly retryAfterMs: number,
    options?: XErrorOptions,
  ) {
    super('NO_CAPACITY', 503, message, options);
  }
}

/** The request's deadline (`timeoutMs`) passed before it was answered. HTTP 504. */
export class DeadlineExceededError extends DispatcherError {
  constructor(
    readonly timeoutMs: number,
    message = `deadline of ${timeoutMs} ms exceeded`,
  ) {
    super('DEADLINE_EXCEEDED', 504, message);
  }
}

/** A dispatch rule (or a `dispatch.yaml` document) is invalid. */
export class InvalidDispatchRuleError extends DispatcherError {
  constructor(
    message: string,
    /** Index of the offending entry, when one entry is to blame. */
    readonly index?: number,
    options?: XErrorOptions,
  ) {
    super(
      'INVALID_DISPATCH_RULE',
      500,
      index === undefined ? message : `dispatch rule ${index}: ${message}`,
      options,
    );
  }
}

/** The request itself is malformed (bad method, URL, headers or body). HTTP 400. */
export class InvalidRequestError extends DispatcherError {
  constructor(message: string, options?: XErrorOptions) {
    super('INVALID_REQUEST', 400, message, options);
  }
}

/** The request or response body is larger than allowed. HTTP 413. */
export class PayloadTooLargeError extends DispatcherError {
  constructor(readonly limitBytes: number) {
    super('PAYLOAD_TOO_LARGE', 413, `body larger than ${limitBytes} bytes`);
  }
}

/**
 * The request has more header lines than the front door inspects (`maxHeaders`; Node truncates
 * `rawHeaders` at 2 000, which would hide a second `Host` or a `Transfer-Encoding`). HTTP 431.
 */
export class TooManyHeadersError extends DispatcherError {
  constructor(
    readonly limit: number,
    received: number,
  ) {
    super(
      'TOO_MANY_HEADERS',
      431,
      `too many header lines: expected at most ${limit}, got ${received}`,
    );
  }
}

/**
 * Too many failed admin token attempts from one client address; `retryAfterMs` feeds the
 * `Retry-After` header. HTTP 429.
 */
export class TooManyAttemptsError extends DispatcherError {
  constructor(readonly retryAfterMs: number) {
    super(
      'TOO_MANY_ATTEMPTS',
      429,
      `too many failed admin token attempts from this address, retry in ${Math.ceil(retryAfterMs / 1000)} s`,
    );
  }
}

/** The instance could not be reached or broke the response. HTTP 502. */
export class BackendError extends DispatcherError {
  constructor(message: string, options?: XErrorOptions) {
    super('BACKEND_ERROR', 502, message, options);
  }
}

/** An instance failed to start (process exit, port never opened, failed `/_ah/start`). HTTP 503. */
export class InstanceStartError extends DispatcherError {
  /** The child's last output lines (at most 20 lines / 4 KiB), when it had any. */
  readonly output: string | undefined;
  constructor(message: string, options?: XErrorOptions & { readonly output?: string }) {
    super('INSTANCE_START_FAILED', 503, message, options);
    this.output = options?.output || undefined;
  }
}

/** An option of `createDispatcher` (or of a backend) is invalid. */
export class InvalidConfigError extends DispatcherError {
  constructor(message: string, options?: XErrorOptions) {
    super('INVALID_CONFIG', 500, message, options);
  }
}

/** The event scheduler holds `maxEvents` pending events already. */
export class EventLimitReachedError extends DispatcherError {
  constructor(readonly limit: number) {
    super('EVENT_LIMIT_REACHED', 503, `the scheduler holds ${limit} pending events already`);
  }
}

/** An optional peer dependency (such as `ioredis`) is not installed. */
export class MissingDependencyError extends DispatcherError {
  constructor(
    readonly dependency: string,
    purpose: string,
    options?: XErrorOptions,
  ) {
    super(
      'MISSING_DEPENDENCY',
      500,
      `${purpose} needs the optional peer dependency "${dependency}": npm install ${dependency}`,
      options,
    );
  }
}

/** The dispatcher was closed. HTTP 503. */
export class DispatcherClosedError extends DispatcherError {
  constructor() {
    super('DISPATCHER_CLOSED', 503, 'the dispatcher is closed');
  }
}

/**
 * The durable event store (Redis) cannot be reached in time: the first connection did not come
 * within `startTimeoutMs`, or an operation got no answer within `commandTimeoutMs`, or failed
 * because the connection is down. `url` carries no password. HTTP 503; retry after `retryAfterMs`.
 */
export class EventStoreUnavailableError extends DispatcherError {
  constructor(
    /** Where the store was expected, password removed. */
    readonly url: string,
    /** `'connect'`, `'put'`, `'load'`, ... */
    readonly operation: string,
    reason: string,
    readonly retryAfterMs = 1_000,
    options?: XErrorOptions,
  ) {
    super(
      'EVENT_STORE_UNAVAILABLE',
      503,
      `the Redis event store at ${url} is unavailable (${operation}): ${reason}`,
      options,
    );
  }
}
