import { describe, expect, it } from 'vitest';
import { ManualClock } from './manualClock.js';
import { TimerQueue, timerQueue, type TimerEntry } from './timerQueue.js';

function entry(at: number, fired: number[]): TimerEntry {
  return { at, prev: undefined, next: undefined, queued: false, fire: () => fired.push(at) };
}

describe('TimerQueue', () => {
  it('fires caller-owned entries in deadline order on one timer, skipping removed ones', async () => {
    const clock = new ManualClock();
    const queue = new TimerQueue(clock);
    const fired: number[] = [];
    const a = entry(30, fired);
    const b = entry(10, fired);
    const c = entry(20, fired);
    const d = entry(25, fired);
    for (const e of [a, b, c, d]) queue.insert(e);
    expect(queue.size).toBe(4);
    expect(clock.pending).toBe(1);
    queue.remove(d);
    queue.remove(d);
    await clock.advance(15);
    expect(fired).toEqual([10]);
    await clock.advance(100);
    expect(fired).toEqual([10, 20, 30]);
    expect(queue.size).toBe(0);
    expect(clock.pending).toBe(0);
  });

  it('never queues an Infinity deadline; an earlier entry re-arms the timer; stop() cancels it', async () => {
    const clock = new ManualClock();
    const queue = new TimerQueue(clock);
    const fired: number[] = [];
    queue.insert(entry(Infinity, fired));
    expect(queue.size).toBe(0);
    queue.insert(entry(100, fired));
    queue.add(5, () => fired.push(5));
    await clock.advance(6);
    expect(fired).toEqual([5]);
    queue.stop();
    await clock.advance(500);
    expect(fired).toEqual([5]);
  });

  it('an entry can be re-inserted after it fired or was removed', async () => {
    const clock = new ManualClock();
    const queue = new TimerQueue(clock);
    const firedAt: number[] = [];
    const e: TimerEntry = {
      at: 10,
      prev: undefined,
      next: undefined,
      queued: false,
      fire: () => firedAt.push(clock.now()),
    };
    queue.insert(e);
    queue.insert(e); // already queued: ignored
    expect(queue.size).toBe(1);
    await clock.advance(10);
    e.at = 20;
    queue.insert(e);
    await clock.advance(10);
    expect(firedAt).toEqual([10, 20]);
  });

  it('timerQueue(clock) shares one queue per clock', () => {
    const clock = new ManualClock();
    expect(timerQueue(clock)).toBe(timerQueue(clock));
    expect(timerQueue(new ManualClock())).not.toBe(timerQueue(clock));
  });
});
