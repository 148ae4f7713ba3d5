import type { Clock } from './clock.js';

/** What {@link timeoutSignal} returns. */
export interface TimeoutSignal {
  /** Aborts with `reason()` after the delay, or with the parent's reason when it aborts first. */
  readonly signal: AbortSignal;
  /** Cancels the timer and unhooks the parent; call it once the work settled. */
  clear(): void;
}

/**
 * An abort signal that fires after `ms` on `clock` with `reason()` (a typed deadline error, say)
 * and follows `parent`. Unlike `AbortSignal.timeout` it runs on an injectable {@link Clock} (a
 * `ManualClock` drives it in tests), names its own reason, and its timer is unref'd and
 * cancellable, so a settled call leaves nothing armed.
 */
export function timeoutSignal(
  clock: Clock,
  ms: number,
  reason: () => unknown,
  parent?: AbortSignal,
): TimeoutSignal {
  const controller = new AbortController();
  const timer = clock.setTimeout(() => controller.abort(reason()), ms);
  timer.unref?.();
  const onParent = () => controller.abort(parent!.reason);
  if (parent) {
    if (parent.aborted) controller.abort(parent.reason);
    else parent.addEventListener('abort', onParent, { once: true });
  }
  return {
    signal: controller.signal,
    clear: () => {
      clock.clearTimeout(timer);
      parent?.removeEventListener('abort', onParent);
    },
  };
}
