import { systemClock, type Clock } from './clock.js';

/** Uses of one reading before the clock is read again, within one turn of the event loop. */
const USES = 32;

let reading = 0;
let usesLeft = 0;
let expiryArmed = false;

function expire(): void {
  expiryArmed = false;
  usesLeft = 0;
}

/**
 * The system clock's `now()`, read at most once per 32 calls and again after every turn of the
 * event loop: a burst of calls shares one reading. For decisions that tolerate that staleness (an
 * open circuit's fast failure, a retry-budget deposit), where a `performance.now()` per call
 * (45–60 ns on a small VM) is a fifth of the cost. A reading is never older than the current
 * event-loop phase, nor older than 32 calls in a loop that never yields.
 */
export function coarseNow(): number {
  if (usesLeft-- > 0) return reading;
  reading = systemClock.now();
  usesLeft = USES - 1;
  if (!expiryArmed) {
    expiryArmed = true;
    setImmediate(expire).unref();
  }
  return reading;
}

/** {@link coarseNow} for the system clock; any other clock (a `ManualClock`) is read as is. */
export function coarseNowOf(clock: Clock): () => number {
  return clock === systemClock ? coarseNow : () => clock.now();
}
