import type { Clock } from '@x/resilience';
import { idHex } from '../protocol.js';
import type { IncomingRequest } from '../workerTransport.js';
import type { Execution } from './execution.js';

const EMPTY_META: Readonly<Record<string, string>> = Object.freeze({});

/** What a {@link HandlerContextImpl} asks of the worker that runs the execution. */
export interface ExecutionControl {
  /** The execution's AbortSignal, created on first read, aborted at the deadline. */
  signalOf(execution: Execution): AbortSignal;
  /** Sends the early acknowledgement of every request of the execution. */
  ackAll(execution: Execution): void;
}

/**
 * The handler context (the public `HandlerContext`): a class so that creating one per request is
 * cheap; the signal is created only when a handler reads it.
 */
export class HandlerContextImpl<W extends { readonly clock: Clock }> {
  readonly method: string;
  readonly attempt: number;
  readonly deadline: number;
  readonly meta: Readonly<Record<string, string>>;

  constructor(
    readonly worker: W,
    private readonly control: ExecutionControl,
    private readonly execution: Execution,
    private readonly first: IncomingRequest,
  ) {
    this.method = execution.method;
    this.attempt = first.attempt;
    this.deadline = execution.deadline;
    this.meta = first.meta ?? EMPTY_META;
  }

  get requestId(): string {
    return idHex(this.first.id);
  }

  get signal(): AbortSignal {
    return this.control.signalOf(this.execution);
  }

  remainingMs(): number {
    return this.deadline === Infinity
      ? Infinity
      : Math.max(0, this.deadline - this.worker.clock.now());
  }

  ack(): void {
    this.control.ackAll(this.execution);
  }
}
