import { XError } from '@x/resilience';

/**
 * An error of the gateway itself, with the HTTP status the routes' HTTP entrypoint answers
 * (`httpStatusFor` reads `status`) and a stable `code` in the JSON body.
 */
export class GatewayError extends XError {
  constructor(
    code: string,
    readonly status: number,
    message: string,
    options?: { readonly cause?: unknown; readonly retryAfterMs?: number },
  ) {
    super(code, message, options);
    if (options?.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs;
  }

  /** With a 503: when retrying may help, in ms (the HTTP entrypoint answers `Retry-After`). */
  readonly retryAfterMs?: number;
}
