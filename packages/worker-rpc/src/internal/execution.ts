import type { TimerHandle, TraceSpan } from '@x/resilience';
import { isWorkerRpcError, type WireError } from '../errors.js';
import type { ResolvedHandler } from '../resolveHandler.js';
import type { IncomingRequest } from '../workerTransport.js';

/** How a handler run ended, as replied (and replayed to duplicates from the dedupe window). */
export interface ExecutionOutcome {
  readonly ok: boolean;
  readonly value: unknown;
  readonly error: WireError | undefined;
  readonly cause: unknown;
}

/**
 * One handler run on the worker side: the requests it answers (the first one and duplicates that
 * joined it), its deadline, its lazily created abort controller and where it stands (queued,
 * started, acknowledged, finished).
 */
export class Execution {
  requests: IncomingRequest[];
  controller: AbortController | undefined;
  timer: TimerHandle | undefined;
  acked = false;
  started = false;
  finished = false;
  /** Waiting for a handler slot in the worker's bulkhead. */
  queued = false;
  /** Takes the execution out of the bulkhead's queue (aborted when it finishes while queued). */
  wait: AbortController | undefined;
  startedAt = 0;
  /** The `server` span of this handled call, when traced. */
  span: TraceSpan | undefined;
  /** Links of the worker's list of running executions (see `ExecutionList`). */
  prev: Execution | undefined = undefined;
  next: Execution | undefined = undefined;
  listed = false;

  constructor(
    first: IncomingRequest,
    readonly method: string,
    readonly handler: ResolvedHandler | undefined,
    readonly params: unknown,
    readonly deadline: number,
    readonly dedupeKey: string | undefined,
    readonly receivedAt: number,
  ) {
    this.requests = [first];
  }
}

/**
 * What a failed handler reports: when it failed because its `ctx.signal` aborted (the deadline, a
 * CANCEL, a forced drain) with an untyped abort error, such as the `AbortError` of
 * `timers/promises` or `fetch`, the abort's reason (`DEADLINE_EXCEEDED`, `CANCELLED`,
 * `UNAVAILABLE`) rather than `INTERNAL`.
 */
export function abortedBy(execution: Execution, error: unknown): unknown {
  const signal = execution.controller?.signal;
  if (signal === undefined || !signal.aborted || isWorkerRpcError(error)) return error;
  const { name, cause } = (error ?? {}) as { name?: unknown; cause?: unknown };
  return name === 'AbortError' || cause === signal.reason ? signal.reason : error;
}
