import type { Response } from './response.js';

/** A request sent with `Resources.request`, to collect with `Resources.getresponse`. */
export interface PendingRequest<T = unknown> {
  readonly host: string;
  readonly method: string;
  readonly path: string;
  /** Settles with the response (lupyne's `getresponse`); rejects with a `RestClientError`. */
  readonly response: Promise<Response<T>>;
}
