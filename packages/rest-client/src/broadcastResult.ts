import { InvalidCallError, type RestClientError } from './errors.js';
import type { Response } from './response.js';

/**
 * When a broadcast is decided:
 * - `'all'` (default): every host must answer (any status, as lupyne); the first transport
 *   failure decides it (rejects with `BROADCAST`) and cancels the hosts still running;
 * - `'settled'`: wait for every host and resolve with responses and failures;
 * - `'first'`: the first `ok` (2xx) response wins, the others are cancelled; rejects when none is ok;
 * - `{ quorum: k }` ({@link quorum}): resolves once `k` hosts answered `ok`, cancelling the rest;
 *   rejects as soon as `k` can no longer be reached.
 */
export type BroadcastMode = 'all' | 'settled' | 'first' | { readonly quorum: number };

/** The broadcast mode "at least `k` hosts answered 2xx". */
export function quorum(k: number): { readonly quorum: number } {
  if (!Number.isInteger(k) || k < 1)
    throw new InvalidCallError(`quorum must be an integer >= 1, got ${String(k)}`);
  return { quorum: k };
}

/** What a broadcast collected, whether it resolved or rejected (then on `BroadcastError.result`). */
export interface BroadcastResult<T = unknown> {
  readonly mode: BroadcastMode;
  /** The hosts addressed, in order. */
  readonly hosts: readonly string[];
  /** Every response received, by host, whatever its status (lupyne returned non-2xx responses too). */
  readonly responses: ReadonlyMap<string, Response<T>>;
  /** Transport failures by host; hosts cancelled once the mode was decided have an `ABORTED` error. */
  readonly failures: ReadonlyMap<string, RestClientError>;
  /** Every host answered. */
  readonly complete: boolean;
  /** The mode was satisfied (false on the result of a `BroadcastError`). */
  readonly satisfied: boolean;
}

/** What a `Shards.multicast` collected: a broadcast result plus which host covers which key. */
export interface MulticastResult<T = unknown, K = unknown> extends BroadcastResult<T> {
  /** Key → the host whose response covers it (after any re-cover of failed hosts). */
  readonly assignment: ReadonlyMap<K, string>;
  /** Keys that no answering host covers (empty when satisfied in mode `'all'`). */
  readonly uncovered: readonly K[];
}
