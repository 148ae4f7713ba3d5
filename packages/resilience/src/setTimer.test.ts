import { describe, expect, it } from 'vitest';
import { captureWarnings } from '@x/testkit';
import { clearTimer, setTimer } from './setTimer.js';
import { sleep, systemClock } from './clock.js';

describe('setTimer', () => {
  it('arms no timer for a delay above 2^31-1 ms: no early fire, no TimeoutOverflowWarning', async () => {
    const warnings = captureWarnings();
    let fired = 0;
    const handles = [3e9, 1e12, Infinity].map(ms => setTimer(() => fired++, ms));
    const viaClock = systemClock.setTimeout(() => fired++, 3e9);
    await new Promise(resolve => setTimeout(resolve, 30));
    for (const h of handles) clearTimer(h);
    systemClock.clearTimeout(viaClock);
    expect(fired).toBe(0);
    expect((await warnings.stop()).filter(w => w.name === 'TimeoutOverflowWarning')).toEqual([]);
  });

  it('fires a normal delay, and NaN or a negative delay on the next turn', async () => {
    const order: string[] = [];
    setTimer(() => order.push('nan'), Number.NaN);
    setTimer(() => order.push('neg'), -5);
    setTimer(() => order.push('5ms'), 5);
    await sleep(systemClock, 40);
    expect(order).toEqual(['nan', 'neg', '5ms']);
  });

  it('clearTimer cancels a real timer and ignores undefined', async () => {
    let fired = false;
    clearTimer(setTimer(() => (fired = true), 1));
    clearTimer(undefined);
    await sleep(systemClock, 20);
    expect(fired).toBe(false);
  });
});
