import type { RestClientError } from '../errors.js';
import type { HttpStatusError } from '../errors.js';

/** What {@link retryRule} reads from the resolved `retry` option. */
export interface RetryRuleOptions {
  readonly retryOn: ((error: RestClientError, attempt: number) => boolean) | undefined;
  readonly statuses: ReadonlySet<number>;
  readonly retryOnTimeout: boolean;
}

/**
 * The `retryOn` of the client's `@x/resilience` `RetryPolicy`: which failed tries are retried.
 * The default: failures where nothing was sent (`CONNECT`, connect `TIMEOUT`), always; and, only
 * for idempotent requests, `SOCKET` failures, the retryable `statuses` and (with
 * `retryOnTimeout`) try timeouts. Never `ABORTED`, `DECODE`, `RESPONSE_TOO_LARGE`, `NO_HOST`,
 * `CLOSED` or a total timeout. A custom `retryOn` gets the tries made so far (`error.attempts`).
 */
export function retryRule(options: RetryRuleOptions): (error: unknown, attempt: number) => boolean {
  const { retryOn, statuses, retryOnTimeout } = options;
  if (retryOn !== undefined)
    return (error, attempt) => {
      const failure = error as RestClientError;
      return retryOn(failure, failure.attempts || attempt + 1);
    };
  return error => {
    const failure = error as RestClientError;
    switch (failure.code) {
      case 'CONNECT':
        return true;
      case 'TIMEOUT': {
        const phase = (failure as { phase?: string }).phase;
        return phase === 'connect' || (phase === 'try' && retryOnTimeout && failure.idempotent);
      }
      case 'SOCKET':
        return failure.idempotent;
      case 'HTTP_ERROR':
        return failure.idempotent && statuses.has((failure as HttpStatusError).status);
      default:
        return false;
    }
  };
}
