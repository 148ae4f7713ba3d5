import { clearTimer, setTimer } from './setTimer.js';

/** A timer handle; `ref`/`unref` exist for the real clock and are no-ops elsewhere. */
export interface TimerHandle {
  ref?(): unknown;
  unref?(): unknown;
}

/**
 * Time source and timers used by every policy. Inject a {@link ManualClock} in tests to drive
 * schedules deterministically. `now()` is monotonic milliseconds (not epoch).
 */
export interface Clock {
  now(): number;
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

// Node's global `performance` is a lazy accessor that validates its receiver on every read
// (about 25 ns); the object itself never changes, so read it once.
const perf = globalThis.performance;

/**
 * The real clock: `performance.now()` and the global timers (looked up at call time) through
 * {@link setTimer}, so a delay above 2^31−1 ms arms no timer instead of firing after 1 ms.
 */
export const systemClock: Clock = {
  now: () => perf.now(),
  setTimeout: (callback, ms) => setTimer(callback, ms),
  clearTimeout: handle => clearTimer(handle),
};

/** Resolves after `ms` on `clock`, or rejects with the signal's reason when it aborts first. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      clock.clearTimeout(handle);
      reject(signal!.reason);
    };
    const handle = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
