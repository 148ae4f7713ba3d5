import type { Endpoint } from './endpoint.js';
import type { PolicyContext } from './policy.js';

const NEVER_ABORTED: AbortSignal = new AbortController().signal;

/** What {@link policyContext} needs; every field is optional. */
export interface PolicyContextInit {
  /** Aborts the work. Default: a signal that never aborts. */
  readonly signal?: AbortSignal | undefined;
  /** Absolute deadline on the policy clock. Default `Infinity`. */
  readonly deadline?: number | undefined;
  /** Attempt number. Default 0. */
  readonly attempt?: number | undefined;
  /** The endpoint chosen for this attempt. Default none. */
  readonly endpoint?: Endpoint | undefined;
}

/**
 * A {@link PolicyContext} for code that drives a policy's parts itself (a retry schedule, a
 * pipeline's `run`) instead of calling `execute`: the one way to build one outside
 * `@x/resilience`, so no package hand-writes (or casts) the literal.
 */
export function policyContext(init: PolicyContextInit = {}): PolicyContext {
  return {
    signal: init.signal ?? NEVER_ABORTED,
    attempt: init.attempt ?? 0,
    deadline: init.deadline ?? Infinity,
    endpoint: init.endpoint,
  };
}
