import type { Clock } from './clock.js';
import { systemClock } from './clock.js';

// Log-linear buckets (HdrHistogram style): every power of two is split into 32 equal sub-buckets
// read straight from the bits of the float64, so a bucket index costs no Math.log.
const SUB_BITS = 5;
const SUB_BUCKETS = 1 << SUB_BITS;
const MIN_MS = 0.01;
const MAX_MS = 3_600_000;

const scratch = new Float64Array(1);
const scratchWords = new Uint32Array(scratch.buffer);
/** Index of the high 32-bit word of a float64 (sign, exponent, top of the mantissa). */
const HIGH = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0;

function highWord(x: number): number {
  scratch[0] = x;
  return scratchWords[HIGH]!;
}

const MIN_EXPONENT = (highWord(MIN_MS) >>> 20) - 1023; // -7
const MAX_EXPONENT = (highWord(MAX_MS) >>> 20) - 1023; // 21
const BUCKETS = (MAX_EXPONENT - MIN_EXPONENT + 1) * SUB_BUCKETS;

/** Bucket of a value in [MIN_MS, MAX_MS] (positive normal doubles only). */
function bucketOf(ms: number): number {
  const hi = highWord(ms < MIN_MS ? MIN_MS : ms > MAX_MS ? MAX_MS : ms);
  return (
    (((hi >>> 20) - 1023 - MIN_EXPONENT) << SUB_BITS) |
    ((hi >>> (20 - SUB_BITS)) & (SUB_BUCKETS - 1))
  );
}

/**
 * The value reported for each bucket [a, b): 2ab / (a + b), which bounds the relative error by
 * (b - a) / (a + b) <= 1/65 (about 1.5%).
 */
const REPRESENTATIVE = new Float64Array(BUCKETS);
for (let i = 0; i < BUCKETS; i++) {
  const base = 2 ** (MIN_EXPONENT + (i >> SUB_BITS));
  const sub = i & (SUB_BUCKETS - 1);
  const a = base * (1 + sub / SUB_BUCKETS);
  const b = base * (1 + (sub + 1) / SUB_BUCKETS);
  REPRESENTATIVE[i] = (2 * a * b) / (a + b);
}

/** Options of {@link LatencyHistogram}. */
export interface LatencyHistogramOptions {
  /** Values older than this many ms are dropped; `Infinity` keeps everything. Default 60_000. */
  windowMs?: number;
  /** Number of slices the window rotates by (1 to 1000; 1 when `windowMs` is Infinity). Default 6. */
  slices?: number;
  /** Time source. Default `systemClock`. */
  clock?: Clock;
}

/**
 * A sliding-window latency histogram. `record(ms)` is O(1) and allocation-free; `percentile(q)`
 * is O(buckets). Values are bucketed log-linearly with at most ~1.5% relative error between
 * 0.01 ms and 1 hour (values outside are clamped into that range for the percentiles; `mean`,
 * `max`, `min` and `sum` are exact). The window is split into `slices`; recording goes to the
 * current slice and slices older than `windowMs` are dropped, checked against `clock.now()` on
 * every record and read (no timers). Defaults: `windowMs` 60_000, `slices` 6, `clock` systemClock.
 * Reads of an empty histogram return 0.
 */
export class LatencyHistogram {
  /** Relative error bound of {@link percentile} for values in [0.01 ms, 1 h]. */
  static readonly maxRelativeError = 1 / (2 * SUB_BUCKETS + 1);

  /** The window in ms. */
  readonly windowMs: number;
  /** Number of slices. */
  readonly slices: number;
  private readonly sliceMs: number;
  private readonly clock: Clock;
  /** `slices` rows of `BUCKETS` counts. */
  private readonly counts: Float64Array;
  private readonly sliceCount: Float64Array;
  private readonly sliceSum: Float64Array;
  private readonly sliceMin: Float64Array;
  private readonly sliceMax: Float64Array;
  /** Scratch: row offsets of the non-empty slices, for `percentile`. */
  private readonly active: Int32Array;
  private epoch = 0;
  private current = 0;
  /** Clock time the current slice started and ends (see {@link setEpoch}). */
  private epochStart = 0;
  private nextEpochAt = 0;

  constructor(options: LatencyHistogramOptions = {}) {
    const { windowMs = 60_000, clock = systemClock } = options;
    if (typeof windowMs !== 'number' || !(windowMs > 0)) {
      throw new RangeError(`windowMs must be a number > 0 (or Infinity), got ${String(windowMs)}`);
    }
    const slices = windowMs === Infinity ? 1 : (options.slices ?? 6);
    if (!Number.isInteger(slices) || slices < 1 || slices > 1000) {
      throw new RangeError(`slices must be an integer from 1 to 1000, got ${String(slices)}`);
    }
    if (clock === null || typeof clock !== 'object' || typeof clock.now !== 'function') {
      throw new TypeError('clock must be a Clock with a now() method');
    }
    this.windowMs = windowMs;
    this.slices = slices;
    this.sliceMs = windowMs / slices;
    this.clock = clock;
    this.counts = new Float64Array(slices * BUCKETS);
    this.sliceCount = new Float64Array(slices);
    this.sliceSum = new Float64Array(slices);
    this.sliceMin = new Float64Array(slices).fill(Infinity);
    this.sliceMax = new Float64Array(slices);
    this.active = new Int32Array(slices);
    this.setEpoch(this.epochAt(clock.now()));
  }

  /**
   * Records one value in ms. `now` (the clock's current time, when the caller has it) saves a
   * clock read. Throws `RangeError` on NaN, a negative or an infinite value.
   */
  record(ms: number, now?: number): void {
    if (typeof ms !== 'number' || !(ms >= 0 && ms < Infinity)) {
      if (typeof ms !== 'number')
        throw new TypeError(`record() expects a number, got ${typeof ms}`);
      throw new RangeError(`latency must be a finite number >= 0, got ${ms}`);
    }
    this.rotate(now);
    const s = this.current;
    const i = s * BUCKETS + bucketOf(ms);
    this.counts[i] = this.counts[i]! + 1;
    this.sliceCount[s] = this.sliceCount[s]! + 1;
    this.sliceSum[s] = this.sliceSum[s]! + ms;
    if (ms < this.sliceMin[s]!) this.sliceMin[s] = ms;
    if (ms > this.sliceMax[s]!) this.sliceMax[s] = ms;
  }

  /**
   * The `q`-quantile (q in [0, 1]) of the values in the window, nearest-rank: the value at rank
   * `max(1, ceil(q * count))`, within the bucket error and clamped to [min, max]; the first and
   * last ranks are exact (`percentile(0)` is the min, `percentile(1)` the max). 0 when empty.
   * Throws `RangeError` for q outside [0, 1], `TypeError` for a non-number.
   */
  percentile(q: number): number {
    if (typeof q !== 'number' || !(q >= 0 && q <= 1)) {
      if (typeof q !== 'number')
        throw new TypeError(`percentile() expects a number, got ${typeof q}`);
      throw new RangeError(`q must be in [0, 1], got ${q}`);
    }
    this.rotate();
    let total = 0;
    let min = Infinity;
    let max = 0;
    let active = 0;
    for (let s = 0; s < this.slices; s++) {
      const count = this.sliceCount[s]!;
      if (count === 0) continue;
      total += count;
      if (this.sliceMin[s]! < min) min = this.sliceMin[s]!;
      if (this.sliceMax[s]! > max) max = this.sliceMax[s]!;
      this.active[active++] = s * BUCKETS;
    }
    if (total === 0) return 0;
    const target = Math.max(1, Math.ceil(q * total));
    if (target === 1) return min;
    if (target >= total) return max;
    let seen = 0;
    for (let b = 0; b < BUCKETS; b++) {
      for (let k = 0; k < active; k++) seen += this.counts[this.active[k]! + b]!;
      if (seen >= target) {
        const value = REPRESENTATIVE[b]!;
        return value < min ? min : value > max ? max : value;
      }
    }
    return max;
  }

  /** Number of values in the window. */
  get count(): number {
    this.rotate();
    let total = 0;
    for (let s = 0; s < this.slices; s++) total += this.sliceCount[s]!;
    return total;
  }

  /** Sum of the values in the window (ms). */
  get sum(): number {
    this.rotate();
    let total = 0;
    for (let s = 0; s < this.slices; s++) total += this.sliceSum[s]!;
    return total;
  }

  /** Mean of the values in the window (exact); 0 when empty. */
  get mean(): number {
    const count = this.count;
    return count === 0 ? 0 : this.sum / count;
  }

  /** Largest value in the window (exact); 0 when empty. */
  get max(): number {
    this.rotate();
    let max = 0;
    for (let s = 0; s < this.slices; s++) if (this.sliceMax[s]! > max) max = this.sliceMax[s]!;
    return max;
  }

  /** Smallest value in the window (exact); 0 when empty. */
  get min(): number {
    this.rotate();
    let min = Infinity;
    for (let s = 0; s < this.slices; s++) if (this.sliceMin[s]! < min) min = this.sliceMin[s]!;
    return min === Infinity ? 0 : min;
  }

  /** Drops every value. */
  reset(): void {
    for (let s = 0; s < this.slices; s++) this.clearSlice(s);
    this.setEpoch(this.epochAt(this.clock.now()));
  }

  private epochAt(now: number): number {
    return Math.floor(now / this.sliceMs);
  }

  private sliceOf(epoch: number): number {
    return ((epoch % this.slices) + this.slices) % this.slices;
  }

  /** Moves to the slice of `clock.now()`, clearing the slices it passes (at most all of them). */
  private rotate(now = this.clock.now()): void {
    if (now < this.nextEpochAt && now >= this.epochStart) return; // still in the current slice
    const epoch = this.epochAt(now);
    if (!(epoch > this.epoch)) return; // same slice (or a clock that went backwards)
    const steps = Math.min(epoch - this.epoch, this.slices);
    for (let k = 1; k <= steps; k++) this.clearSlice((this.current + k) % this.slices);
    this.setEpoch(epoch);
  }

  /** Makes `epoch` the current slice; `rotate` skips its arithmetic until the slice's end. */
  private setEpoch(epoch: number): void {
    this.epoch = epoch;
    this.current = this.sliceOf(epoch);
    const infinite = this.sliceMs === Infinity;
    this.epochStart = infinite ? -Infinity : epoch * this.sliceMs;
    this.nextEpochAt = infinite ? Infinity : (epoch + 1) * this.sliceMs;
  }

  private clearSlice(s: number): void {
    if (this.sliceCount[s] === 0) return;
    this.counts.fill(0, s * BUCKETS, (s + 1) * BUCKETS);
    this.sliceCount[s] = 0;
    this.sliceSum[s] = 0;
    this.sliceMin[s] = Infinity;
    this.sliceMax[s] = 0;
  }
}
