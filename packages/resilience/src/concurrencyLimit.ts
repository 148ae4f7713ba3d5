import { Bulkhead, type BulkheadOptions } from './bulkhead.js';
import { byNetloc, keyed, type KeyedOptions, type KeyedPolicy } from './keyed.js';
import type { PolicyContext } from './policy.js';

/** Options of {@link concurrencyLimit}. */
export interface ConcurrencyLimitOptions extends Omit<BulkheadOptions, 'key'>, KeyedOptions {
  /** The key of a call. Default: its endpoint's netloc (dace's `max_open_per_netloc`). */
  readonly key?: (context: PolicyContext) => string;
}

/** A bulkhead per key: at most `limit` concurrent calls per host (or per whatever `key` returns). */
export function concurrencyLimit(options: ConcurrencyLimitOptions): KeyedPolicy<Bulkhead> {
  const { key = byNetloc(), maxKeys, idleTtlMs, ...bulkheadOptions } = options;
  new Bulkhead({ ...bulkheadOptions }); // validates limit and queue now, not on the first call
  return keyed(key, k => new Bulkhead({ ...bulkheadOptions, key: k }), {
    maxKeys,
    idleTtlMs,
    clock: options.clock,
  });
}
