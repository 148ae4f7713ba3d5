import type { Dispatcher, Pool } from 'undici';
import { RequestTimeoutError, type RestClientErrorOptions } from '../errors.js';
import type { CallSpec } from './callSpec.js';
import type { TimerEntry } from '@x/resilience';

type Listener = () => void;

/**
 * One try of a request: its cancellation token and its deadline entry in one object. undici
 * accepts any EventEmitter-like `signal` (`on`/`once`/`removeListener` plus `aborted`/`reason`),
 * so this replaces an `AbortController` (about 20 µs of CPU per request on Node 20, measured)
 * and a timer. Aborting it fails the undici request, or its body, with `reason`.
 */
export class Exchange implements TimerEntry {
  aborted = false;
  reason: unknown = undefined;
  private listener: Listener | undefined = undefined;
  /** Rejects the pending {@link request} at once when the try is aborted. */
  private rejectRequest: ((reason: unknown) => void) | undefined = undefined;
  /** Deadline on the client's clock (its entry in the shared `TimerQueue`). */
  at = Infinity;
  prev: TimerEntry | undefined = undefined;
  next: TimerEntry | undefined = undefined;
  queued = false;
  /** Which limit `at` is. */
  phase: 'total' | 'try' = 'total';

  constructor(
    readonly spec: CallSpec,
    readonly host: string,
    readonly attempt: number,
  ) {}

  on(_event: string, listener: Listener): this {
    this.listener = listener;
    return this;
  }

  once(_event: string, listener: Listener): this {
    this.listener = listener;
    return this;
  }

  removeListener(_event: string, listener: Listener): this {
    if (this.listener === listener) this.listener = undefined;
    return this;
  }

  /** Cancels the try with `reason` (the first reason wins). */
  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listener = this.listener;
    this.listener = undefined;
    if (listener !== undefined) listener();
    const reject = this.rejectRequest;
    this.rejectRequest = undefined;
    if (reject !== undefined) reject(reason);
  }

  /**
   * `pool.request(options)` with this try as its signal, rejecting with the abort reason as soon
   * as the try is aborted. undici itself notices an abort only once a connection takes the request
   * (nodejs/undici#386), so a request still queued for a busy pool, or waiting for a connection
   * being opened, would outlive its deadline. A response that arrives after the abort is destroyed.
   */
  request(pool: Pool, options: Dispatcher.RequestOptions): Promise<Dispatcher.ResponseData> {
    if (this.aborted) return Promise.reject(this.reason);
    return new Promise((resolve, reject) => {
      this.rejectRequest = reject;
      pool.request(options).then(
        data => {
          if (this.rejectRequest === reject) {
            this.rejectRequest = undefined;
            resolve(data);
          } else data.body.destroy();
        },
        (error: unknown) => {
          if (this.rejectRequest === reject) this.rejectRequest = undefined;
          reject(error); // no-op when the abort already rejected
        },
      );
    });
  }

  /** The deadline passed: abort with a `TIMEOUT`. */
  fire(): void {
    this.abort(this.timeoutError());
  }

  timeoutError(): RequestTimeoutError {
    return new RequestTimeoutError(
      this.phase,
      this.phase === 'try' ? this.spec.perTryMs : this.spec.totalMs,
      this.info(),
    );
  }

  /** Where this try was going, for errors. */
  info(): RestClientErrorOptions {
    const spec = this.spec;
    return {
      host: this.host,
      method: spec.method,
      path: spec.path,
      idempotent: spec.idempotent,
      attempts: this.attempt,
    };
  }
}
