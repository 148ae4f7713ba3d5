import type { FailureOutcome, FailureReason, Meta, Outcome, SuccessOutcome } from './outcome.js';
import type { CallbackKind } from './routeRuntime.js';

/** What `onFailure` receives: the original message, its translation (if it got that far) and the error. */
export interface FailureEvent<Out> {
  readonly message: unknown;
  readonly input: Out | undefined;
  readonly error: unknown;
  readonly reason: FailureReason;
  readonly attempts: number;
  readonly meta: Meta;
}

/** What `onSuccess` receives. */
export interface SuccessEvent<Out, R> {
  readonly message: unknown;
  readonly input: Out;
  readonly result: R;
  readonly attempts: number;
  readonly meta: Meta;
}

/** What `onSettled` receives (after success or terminal failure; never for deferred/cancelled). */
export interface SettledEvent<Out, R> {
  readonly message: unknown;
  readonly input: Out | undefined;
  readonly outcome: SuccessOutcome<R> | FailureOutcome;
  readonly meta: Meta;
}

/** What a route reports to `onEvent` listeners (`testRoute` records them). */
export type RouteEvent =
  | {
      readonly type: 'attempt';
      readonly entryId: unknown;
      readonly callId: string;
      /** 0 for the first try. */
      readonly attempt: number;
      readonly at: number;
      readonly durationMs: number;
      readonly failed: boolean;
      readonly error?: unknown;
    }
  | {
      readonly type: 'retry';
      readonly entryId: unknown;
      /** 1 for the first retry. */
      readonly attempt: number;
      readonly delayMs: number;
      readonly mode: 'sync' | 'async';
      readonly at: number;
      readonly error: unknown;
    }
  | {
      readonly type: 'callback';
      readonly entryId: unknown;
      readonly callback: CallbackKind;
      readonly attempt: number;
      readonly at: number;
      readonly failed: boolean;
      readonly error?: unknown;
    }
  | {
      readonly type: 'outcome';
      readonly entryId: unknown;
      readonly at: number;
      readonly outcome: Outcome;
    };
