import { MAX_TIMER_MS } from './duration.js';

/** What {@link setTimer} returns: a Node timer, or an inert handle for "never". */
export interface SafeTimer {
  ref(): unknown;
  unref(): unknown;
}

const never: SafeTimer = {
  ref: () => never,
  unref: () => never,
};

/**
 * `setTimeout` that never overflows: a delay above {@link MAX_TIMER_MS} (or `Infinity`) means
 * "never" and arms no timer (the returned handle is inert, `clearTimer` accepts it); `NaN` or a
 * negative delay fires on the next turn. Plain `setTimeout` would fire such a delay after 1 ms and
 * print a `TimeoutOverflowWarning`.
 */
export function setTimer(callback: () => void, ms: number): SafeTimer {
  if (ms > MAX_TIMER_MS) return never;
  return setTimeout(callback, ms > 0 ? ms : 0);
}

/** Cancels a timer from {@link setTimer} (or `setTimeout`); `undefined` is ignored. */
export function clearTimer(handle: unknown): void {
  if (handle !== undefined && handle !== never)
    clearTimeout(handle as ReturnType<typeof setTimeout>);
}
