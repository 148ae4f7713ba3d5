import { describe, expect, it } from 'vitest';
import { ManualClock } from './manualClock.js';
import { repeat } from './repeat.js';
import { timeoutSignal } from './timeoutSignal.js';
import { untilAborted } from './untilAborted.js';
import { withTimeout } from './withTimeout.js';

class Late extends Error {}

describe('timeoutSignal', () => {
  it('aborts with its own reason after the delay on the given clock, not before', async () => {
    const clock = new ManualClock();
    const { signal } = timeoutSignal(clock, 100, () => new Late('late'));
    await clock.advance(99);
    expect(signal.aborted).toBe(false);
    await clock.advance(1);
    expect(signal.reason).toBeInstanceOf(Late);
  });

  it('follows its parent, and clear() disarms the timer', async () => {
    const clock = new ManualClock();
    const parent = new AbortController();
    const t = timeoutSignal(clock, 100, () => new Late(), parent.signal);
    parent.abort('gone');
    expect(t.signal.reason).toBe('gone');
    const cleared = timeoutSignal(clock, 100, () => new Late());
    cleared.clear();
    await clock.advance(500);
    expect(cleared.signal.aborted).toBe(false);
    expect(clock.pending).toBe(0);
  });
});

describe('untilAborted and withTimeout', () => {
  it('settle like the promise, or with the abort reason / the timeout reason first', async () => {
    const clock = new ManualClock();
    const never = new Promise<number>(() => {});
    await expect(untilAborted(Promise.resolve(7), new AbortController().signal)).resolves.toBe(7);
    const controller = new AbortController();
    const pending = untilAborted(never, controller.signal);
    controller.abort(new Late('stop'));
    await expect(pending).rejects.toBeInstanceOf(Late);
    const timed = withTimeout(clock, never, 50, () => new Late('timed out'));
    const settled = timed.catch((error: unknown) => error);
    await clock.advance(50);
    expect(await settled).toBeInstanceOf(Late);
    await expect(withTimeout(clock, Promise.resolve(1), 50, () => new Late())).resolves.toBe(1);
    expect(clock.pending).toBe(0);
  });
});

describe('repeat', () => {
  it('ticks every interval after the last tick ended, reports errors and goes on, stops', async () => {
    const clock = new ManualClock();
    const errors: unknown[] = [];
    let ticks = 0;
    const r = repeat(
      clock,
      10,
      () => {
        ticks++;
        if (ticks === 2) throw new Late('tick 2');
      },
      error => errors.push(error),
    );
    await clock.advance(35);
    expect(ticks).toBe(3);
    expect(errors).toHaveLength(1);
    r.stop();
    await clock.advance(100);
    expect(ticks).toBe(3);
  });
});
