import type { BroadcastResult } from './broadcastResult.js';
import { RestClientError, type RestClientErrorOptions } from './errors.js';

/**
 * A broadcast or multicast whose mode was not satisfied. `result` holds every response received,
 * every per-host failure, and (for a multicast) the key assignment.
 */
export class BroadcastError<T = unknown> extends RestClientError {
  declare readonly code: 'BROADCAST';
  constructor(
    readonly result: BroadcastResult<T>,
    message: string,
    options: RestClientErrorOptions = {},
  ) {
    super('BROADCAST', message, options);
  }

  /** The per-host failures, as an array (AggregateError style). */
  get errors(): RestClientError[] {
    return [...this.result.failures.values()];
  }
}
