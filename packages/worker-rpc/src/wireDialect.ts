import type { Codec } from './codec.js';
import { fromTotoError, fromWireError, type WorkerRpcError } from './errors.js';
import { Kind } from './protocol.js';
import type { ReplyFrame } from './transport.js';

const EMPTY = new Uint8Array(0);

/** Where a reply came from, for the errors it is turned into. */
export interface ReplyContext {
  readonly method: string;
  readonly endpoint: string;
  readonly attempt: number;
}

/** A decoded reply read as a result or as a typed error. */
export type ReplyOutcome =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: WorkerRpcError };

/**
 * The client side of a protocol dialect: how params are put in a request body and how a decoded
 * reply reads as a result or an error. wrpc/1 sends the params as the body and marks errors with
 * the ERR kind; toto wraps them as `{ method, parameters }` and answers errors as `{ error }`
 * values (resolved as such with `legacyErrorsAsValues`, toto's behaviour).
 */
export class WireDialect {
  constructor(
    /** toto's dialect (`transport.protocol === 'toto'`). */
    readonly toto: boolean,
    /** Resolve toto `{ error }` values (timeouts, remote errors) instead of rejecting. */
    readonly legacy: boolean,
  ) {}

  /** The request body of `method(params)`. Throws what the codec throws. */
  encodeParams(codec: Codec, method: string, params: unknown): Uint8Array {
    if (this.toto) return codec.encode({ method, parameters: params === undefined ? {} : params });
    return params === undefined ? EMPTY : codec.encode(params);
  }

  /**
   * Reads a decoded RES or ERR reply. `fallback` is the error to report when an ERR carries no
   * body of ours (the transport's error from the status, e.g. a proxy's HTML page).
   */
  outcome(
    frame: ReplyFrame,
    value: unknown,
    context: ReplyContext,
    fallback: (error: WorkerRpcError) => WorkerRpcError,
  ): ReplyOutcome {
    if (frame.kind === Kind.RES && !this.toto) return { ok: true, value };
    if (frame.kind === Kind.ERR) {
      const body = frame.wrapped ? (value as { error?: unknown } | undefined)?.error : value;
      if (this.toto && this.legacy && body !== undefined) return { ok: true, value };
      const error =
        body === undefined && frame.fallbackError
          ? fallback(frame.fallbackError)
          : this.toto
            ? fromTotoError(body, context)
            : fromWireError(body, context);
      return { ok: false, error };
    }
    if (
      this.toto &&
      typeof value === 'object' &&
      value !== null &&
      Object.prototype.hasOwnProperty.call(value, 'error') &&
      Object.keys(value).length === 1
    ) {
      if (this.legacy) return { ok: true, value };
      return { ok: false, error: fromTotoError((value as { error: unknown }).error, context) };
    }
    return { ok: true, value };
  }

  /** Settles a failed call as toto did with `legacyErrorsAsValues`: timeouts and remote errors as values. */
  legacyValue(error: WorkerRpcError): { error: unknown } | undefined {
    if (!this.legacy || !(error.code === 'TIMEOUT' || error.remote)) return undefined;
    return error.code === 'TIMEOUT'
      ? { error: 'timeout' }
      : { error: { code: error.appCode ?? error.code, value: error.message } };
  }
}
