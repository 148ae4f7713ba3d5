import type { Clock, TimerHandle } from '@x/resilience';

/** A signal aborted after `ms` on `clock` (with `reason`), plus a function to cancel the timer. */
export function timeoutSignal(
  clock: Clock,
  ms: number,
  reason: () => unknown,
  parent?: AbortSignal,
): { signal: AbortSignal; clear: () => void } {
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

/** Settles like `promise`, or rejects with `reason()` after `ms` on `clock`. */
export function withTimeout<T>(
  clock: Clock,
  promise: Promise<T>,
  ms: number,
  reason: () => unknown,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = clock.setTimeout(() => reject(reason()), ms);
    timer.unref?.();
    promise.then(
      value => {
        clock.clearTimeout(timer);
        resolve(value);
      },
      error => {
        clock.clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** A repeating timer on `clock`; `stop()` cancels it. Errors in `tick` go to `onError`. */
export function every(
  clock: Clock,
  intervalMs: number,
  tick: () => void | Promise<void>,
  onError: (error: unknown) => void,
): { stop: () => void } {
  let stopped = false;
  let handle: TimerHandle | undefined;
  const schedule = () => {
    if (stopped) return;
    handle = clock.setTimeout(run, intervalMs);
    handle.unref?.();
  };
  const run = () => {
    handle = undefined;
    let result: void | Promise<void>;
    try {
      result = tick();
    } catch (error) {
      onError(error);
      schedule();
      return;
    }
    if (result && typeof (result as Promise<void>).then === 'function') {
      (result as Promise<void>).then(schedule, error => {
        onError(error);
        schedule();
      });
    } else {
      schedule();
    }
  };
  schedule();
  return {
    stop: () => {
      stopped = true;
      if (handle) clock.clearTimeout(handle);
      handle = undefined;
    },
  };
}
