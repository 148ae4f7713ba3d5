/**
 * The maximum of a sampled value over a sliding window, in O(1) memory and time: the window is cut
 * into `buckets` slices, each keeping its own maximum (GAE's `_outstanding_request_history`,
 * without the unbounded list).
 */
export class PeakWindow {
  private readonly sliceMs: number;
  private readonly peaks: Float64Array;
  private readonly epochs: Float64Array;

  constructor(
    readonly windowMs: number,
    readonly buckets = 60,
  ) {
    this.sliceMs = windowMs / buckets;
    this.peaks = new Float64Array(buckets);
    this.epochs = new Float64Array(buckets).fill(-Infinity);
  }

  /** Records `value` at clock time `now`. */
  record(now: number, value: number): void {
    const epoch = Math.floor(now / this.sliceMs);
    const i = ((epoch % this.buckets) + this.buckets) % this.buckets;
    if (this.epochs[i] !== epoch) {
      this.epochs[i] = epoch;
      this.peaks[i] = value;
    } else if (value > this.peaks[i]!) {
      this.peaks[i] = value;
    }
  }

  /** The largest value recorded within the last `windowMs` before `now` (0 when none). */
  peak(now: number): number {
    const epoch = Math.floor(now / this.sliceMs);
    let max = 0;
    for (let i = 0; i < this.buckets; i++) {
      const e = this.epochs[i]!;
      if (e > epoch - this.buckets && e <= epoch && this.peaks[i]! > max) max = this.peaks[i]!;
    }
    return max;
  }
}
