import type { Clock, TimerHandle } from '@x/resilience';

/**
 * A clock whose `now()` returns the time the engine last read with {@link read}. The load
 * trackers of the balancers read the clock on every request start and end; the engine has just
 * read it at those points, so handing them the cached value saves two clock reads per request
 * (`performance.now()` costs 0.1-0.2 µs on Node 20). Timers go to the source clock.
 */
export class CachedClock implements Clock {
  private last: number;

  constructor(readonly source: Clock) {
    this.last = source.now();
  }

  /** Reads the source clock and caches the value. */
  read(): number {
    return (this.last = this.source.now());
  }

  now(): number {
    return this.last;
  }

  setTimeout(callback: () => void, ms: number): TimerHandle {
    return this.source.setTimeout(callback, ms);
  }

  clearTimeout(handle: TimerHandle): void {
    this.source.clearTimeout(handle);
  }
}
