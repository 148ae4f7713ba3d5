import type { Endpoint } from './endpoint.js';
import type { Listen } from './emitter.js';

/** What every policy hands to the function it runs. */
export interface PolicyContext {
  /** Aborted when the caller aborts, the deadline passes, or a hedge lost. Created lazily. */
  readonly signal: AbortSignal;
  /** 0 for the first try, 1 for the first retry or hedge, and so on. */
  readonly attempt: number;
  /** Absolute deadline on the policy clock (`clock.now()` units); `Infinity` when none. */
  readonly deadline: number;
  /** The endpoint a load balancer chose for this attempt, if any. */
  readonly endpoint: Endpoint | undefined;
}

/** A unit of work run under a policy. */
export type Task<T, C extends PolicyContext = PolicyContext> = (context: C) => T | PromiseLike<T>;

/** Events of every policy, merged by {@link pipeline}. */
export type PolicyEvent =
  | { readonly type: 'success'; readonly durationMs: number; readonly key?: string }
  | {
      readonly type: 'failure';
      readonly durationMs: number;
      readonly error: unknown;
      readonly key?: string;
    }
  | { readonly type: 'timeout'; readonly timeoutMs: number }
  | { readonly type: 'lateSettle'; readonly error?: unknown }
  | {
      readonly type: 'retry';
      readonly attempt: number;
      readonly delayMs: number;
      readonly error: unknown;
    }
  | {
      readonly type: 'giveUp';
      readonly attempt: number;
      readonly error: unknown;
      readonly reason: 'maxRetries' | 'notRetryable' | 'budget' | 'deadline' | 'aborted';
    }
  | {
      readonly type: 'stateChange';
      readonly key: string;
      readonly from: CircuitStateName;
      readonly to: CircuitStateName;
    }
  | {
      readonly type: 'reject';
      readonly reason: 'circuit' | 'bulkhead' | 'rateLimit';
      readonly key?: string;
    }
  | { readonly type: 'hedge'; readonly attempt: number; readonly delayMs: number }
  | { readonly type: 'fallback'; readonly error: unknown }
  | {
      readonly type: 'degraded';
      readonly durationMs: number;
      readonly expectedMs: number;
      readonly key?: string;
    };

/** A circuit breaker's state. */
export type CircuitStateName = 'closed' | 'open' | 'half-open' | 'isolated';

/**
 * A resilience policy. `execute` is the public entry; `run` executes inside an existing context
 * (used by {@link pipeline} and wrappers, so that layers share one lazily created signal).
 */
export interface Policy {
  /** Runs `task` under this policy. `signal` aborts it (rejecting with `ABORTED`). */
  execute<T>(task: Task<T>, signal?: AbortSignal): Promise<T>;
  /** Runs `task` inside the context of an enclosing policy. */
  run<T>(task: Task<T>, context: PolicyContext): Promise<T>;
  /** Subscribes to this policy's events. */
  readonly onEvent: Listen<PolicyEvent>;
}
