import { describe, expect, it } from 'vitest';
import { ManualClock } from './manualClock.js';
import { sleep } from './clock.js';

describe('ManualClock', () => {
  it('starts at the given time and only moves when advanced', async () => {
    const clock = new ManualClock(1000);
    expect(clock.now()).toBe(1000);
    await clock.advance(250);
    expect(clock.now()).toBe(1250);
  });

  it('fires due timers in time order, ties in scheduling order, each at its own time', async () => {
    const clock = new ManualClock();
    const fired: Array<[string, number]> = [];
    clock.setTimeout(() => fired.push(['c', clock.now()]), 30);
    clock.setTimeout(() => fired.push(['a', clock.now()]), 10);
    clock.setTimeout(() => fired.push(['b1', clock.now()]), 20);
    clock.setTimeout(() => fired.push(['b2', clock.now()]), 20);
    clock.setTimeout(() => fired.push(['late', clock.now()]), 100);
    expect(clock.pending).toBe(5);
    await clock.advance(30);
    expect(fired).toEqual([
      ['a', 10],
      ['b1', 20],
      ['b2', 20],
      ['c', 30],
    ]);
    expect(clock.pending).toBe(1);
    expect(clock.now()).toBe(30);
  });

  it('clearTimeout cancels a timer', async () => {
    const clock = new ManualClock();
    let fired = 0;
    const handle = clock.setTimeout(() => fired++, 10);
    clock.setTimeout(() => fired++, 20);
    clock.clearTimeout(handle);
    expect(clock.pending).toBe(1);
    await clock.advance(100);
    expect(fired).toBe(1);
    expect(clock.pending).toBe(0);
  });

  it('runs timers scheduled during advance when they fall within the window', async () => {
    const clock = new ManualClock();
    const times: number[] = [];
    const tick = () => {
      times.push(clock.now());
      if (times.length < 10) clock.setTimeout(tick, 10);
    };
    clock.setTimeout(tick, 10);
    await clock.advance(35);
    expect(times).toEqual([10, 20, 30]);
    await clock.advance(100);
    expect(times).toEqual([10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
  });

  it('lets promise chains awaiting a timer schedule the next one within the window', async () => {
    const clock = new ManualClock();
    const times: number[] = [];
    const loop = (async () => {
      for (let i = 0; i < 3; i++) {
        await sleep(clock, 100);
        await Promise.resolve();
        times.push(clock.now());
      }
    })();
    await clock.advance(300);
    await loop;
    expect(times).toEqual([100, 200, 300]);
  });

  it('next() jumps to the next timer', async () => {
    const clock = new ManualClock();
    let fired = false;
    clock.setTimeout(() => (fired = true), 42);
    expect(await clock.next()).toBe(42);
    expect(fired).toBe(true);
    expect(await clock.next()).toBe(0);
  });

  it('treats a negative delay as 0', async () => {
    const clock = new ManualClock(5);
    let fired = false;
    clock.setTimeout(() => (fired = true), -10);
    await clock.advance(0);
    expect(fired).toBe(true);
  });
});

describe('sleep', () => {
  it('resolves after ms on the clock and rejects with the abort reason', async () => {
    const clock = new ManualClock();
    let done = false;
    const p = sleep(clock, 50).then(() => (done = true));
    await clock.advance(49);
    expect(done).toBe(false);
    await clock.advance(1);
    await p;
    expect(done).toBe(true);

    const controller = new AbortController();
    const aborted = sleep(clock, 50, controller.signal);
    const reason = new Error('stop');
    controller.abort(reason);
    await expect(aborted).rejects.toBe(reason);
    expect(clock.pending).toBe(0);
    await expect(sleep(clock, 1, controller.signal)).rejects.toBe(reason);
  });
});
