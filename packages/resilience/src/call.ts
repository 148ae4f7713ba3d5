import type { Dispatcher } from 'undici';
import type { Endpoint } from './endpoint.js';
import { Http } from './http.js';
import type { Scope } from './internal/scope.js';
import type { Logger } from './logger.js';

/**
 * dace's `Call`: the services of one attempt, handed to the function `faultTolerant` wraps.
 * Everything is lazy: an attempt that never reads `signal` or `http` creates neither.
 */
export class Call {
  // Declared and assigned in the constructor (one Call per attempt: no field defined twice).
  /** The id used in stats and logs. */
  declare readonly dependencyId: string;
  /** The undici dispatcher (connection pool) shared by every call of this dependency. */
  declare readonly agent: Dispatcher;
  /** Logger bound to this dependency. */
  declare readonly log: Logger;
  declare private readonly scope: Scope;
  declare private client: Http | undefined;

  constructor(scope: Scope, dependencyId: string, agent: Dispatcher, log: Logger) {
    this.dependencyId = dependencyId;
    this.agent = agent;
    this.log = log;
    this.scope = scope;
    this.client = undefined;
  }

  /** Aborted when the call's deadline passes, the caller aborts, or a hedge lost. */
  get signal(): AbortSignal {
    return this.scope.signal;
  }

  /** 0 for the first try, then 1, 2… */
  get attempt(): number {
    return this.scope.attempt;
  }

  /** Deadline on the policy clock (`Infinity` when none); see {@link remainingMs}. */
  get deadline(): number {
    return this.scope.deadline;
  }

  /** Milliseconds left before the deadline. */
  get remainingMs(): number {
    return this.scope.remaining();
  }

  /** What the load balancer chose for this attempt (undefined without one). */
  get endpoint(): Endpoint | undefined {
    return this.scope.endpoint;
  }

  /** The HTTP service: relative URLs go to {@link endpoint}; requests end with the call. */
  get http(): Http {
    return (this.client ??= new Http(this.agent, {
      baseUrl: this.scope.endpoint?.origin,
      signal: this.scope.signal,
      remaining: () => this.scope.remaining(),
    }));
  }
}
