import { setTimeout as sleep } from 'node:timers/promises';

/** Options for {@link waitFor}. */
export interface WaitForOptions {
  /** Give up after this many milliseconds. Default 5000. */
  timeoutMs?: number;
  /** Pause between two checks, in milliseconds. Default 10. */
  intervalMs?: number;
  /** Describes what is awaited; included in the timeout error. */
  message?: string;
}

/**
 * Polls `check` until it returns (or resolves to) a truthy value and returns that value (typed without
 * `null`/`undefined`). A check that
 * throws counts as "not yet". After `timeoutMs` it rejects with an Error naming `message` whose
 * `cause` is the last error thrown by `check`, if any.
 */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  { timeoutMs = 5000, intervalMs = 10, message }: WaitForOptions = {},
): Promise<NonNullable<T>> {
  const deadline = performance.now() + timeoutMs;
  let lastError: unknown;
  let attempts = 0;
  for (;;) {
    attempts++;
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    const remaining = deadline - performance.now();
    if (remaining <= 0) break;
    await sleep(Math.min(intervalMs, remaining));
  }
  const what = message ? `: ${message}` : '';
  const why =
    lastError === undefined
      ? ''
      : ` (last error: ${lastError instanceof Error ? lastError.message : String(lastError)})`;
  throw new Error(`waitFor timed out after ${timeoutMs}ms and ${attempts} checks${what}${why}`, {
    cause: lastError,
  });
}
