import type { Meta } from '../outcome.js';

/** The retry count a message's metadata carries (0 when none or malformed). */
export function retryCountOf(meta: Meta): number {
  const backoff = meta.backoff as { retryCount?: unknown } | undefined;
  const n = backoff?.retryCount;
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 ? n : 0;
}

/** The metadata of retry number `attempt` (`meta.backoff`). */
export function retryMeta(meta: Meta, attempt: number): Meta {
  return { ...meta, backoff: { retryCount: attempt, lastRetryAt: Date.now() } };
}
