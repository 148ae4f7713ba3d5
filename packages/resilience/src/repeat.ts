import type { Clock, TimerHandle } from './clock.js';

/** A running {@link repeat}. */
export interface Repeating {
  /** Cancels the next tick (a tick in progress finishes). */
  stop(): void;
}

/**
 * Runs `tick` every `intervalMs` on `clock`, the next interval counted from the end of the last
 * tick (an async tick is awaited, so ticks never overlap). A throwing or rejecting tick goes to
 * `onError` and the schedule goes on. Timers are unref'd: a repeat never keeps a process alive.
 */
export function repeat(
  clock: Clock,
  intervalMs: number,
  tick: () => void | Promise<void>,
  onError: (error: unknown) => void,
): Repeating {
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
