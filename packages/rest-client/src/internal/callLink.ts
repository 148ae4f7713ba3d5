import { RequestAbortedError, RequestTimeoutError, type RestClientError } from '../errors.js';
import type { Exchange } from './exchange.js';

/** The error a call fails with when its caller's signal aborts. */
export function abortReason(
  signal: AbortSignal,
  info: { method: string; path: string; idempotent: boolean },
): RestClientError {
  const reason: unknown = signal.reason;
  const options = {
    method: info.method,
    path: info.path,
    idempotent: info.idempotent,
    cause: reason,
  };
  // AbortSignal.timeout() aborts with a DOMException named TimeoutError (undici #2590).
  if (reason instanceof Error && reason.name === 'TimeoutError')
    return new RequestTimeoutError('total', Number.NaN, options);
  return new RequestAbortedError(reason, options);
}

/**
 * Ties a caller's `AbortSignal` to the tries of one call: one listener per call (not per try),
 * aborting whichever tries are running when it fires.
 */
export class CallLink {
  reason: RestClientError | undefined = undefined;
  private readonly running = new Set<Exchange>();

  constructor(
    private readonly signal: AbortSignal,
    private readonly info: { method: string; path: string; idempotent: boolean },
  ) {
    signal.addEventListener('abort', this.onAbort, { once: true });
  }

  /** Aborts `ex` now if the call was aborted, else when it is. */
  track(ex: Exchange): void {
    if (this.reason !== undefined) ex.abort(this.reason);
    else this.running.add(ex);
  }

  untrack(ex: Exchange): void {
    this.running.delete(ex);
  }

  dispose(): void {
    this.signal.removeEventListener('abort', this.onAbort);
    this.running.clear();
  }

  private readonly onAbort = (): void => {
    this.reason = abortReason(this.signal, this.info);
    for (const ex of this.running) ex.abort(this.reason);
    this.running.clear();
  };
}
