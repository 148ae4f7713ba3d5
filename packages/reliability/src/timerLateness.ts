/**
 * How late a bare timer fires in this process, sampled every `periodMs`: the machine's own
 * scheduling delay, measured in the same run as the calls it excuses. On an idle machine it stays
 * at a millisecond or two; on a loaded one (other processes on both cores) a timer can fire tens or
 * hundreds of ms late, and a call that settles "late" by no more than that is not late because of
 * the code under test.
 */
export class TimerLateness {
  private readonly times: Float64Array;
  private readonly lateness: Float64Array;
  private next = 0;
  private count = 0;
  private timer: NodeJS.Timeout | undefined;
  private due = 0;

  constructor(
    private readonly periodMs = 10,
    /** Samples kept (the window looked back over is `capacity × periodMs`). */
    capacity = 1_000,
  ) {
    this.times = new Float64Array(capacity);
    this.lateness = new Float64Array(capacity);
  }

  /** Starts sampling (idempotent). */
  start(): this {
    if (this.timer !== undefined) return this;
    this.due = performance.now() + this.periodMs;
    const tick = () => {
      const now = performance.now();
      this.times[this.next] = now;
      this.lateness[this.next] = Math.max(0, now - this.due);
      this.next = (this.next + 1) % this.times.length;
      this.count = Math.min(this.count + 1, this.times.length);
      this.due = now + this.periodMs;
      this.timer = setTimeout(tick, this.periodMs);
    };
    this.timer = setTimeout(tick, this.periodMs);
    return this;
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** The largest lateness of the samples taken between `from` and `to` (`performance.now()`); 0 when none. */
  maxBetween(from: number, to: number): number {
    let max = 0;
    for (let i = 0; i < this.count; i++) {
      const t = this.times[i]!;
      if (t >= from && t <= to && this.lateness[i]! > max) max = this.lateness[i]!;
    }
    return max;
  }
}
