import { ManualClock } from '@x/resilience';
import { describe, expect, it } from 'vitest';
import { asyncBackoff } from './backoffPolicy.js';
import { MemoryDeadLetters } from './deadLetter.js';
import { route } from './route.js';
import { RunnerContext } from './runnerContext.js';
import { timerEntrypoint, type TimerTick } from './timerEntrypoint.js';
import { deferred } from './test/helpers.js';

describe('timerEntrypoint', () => {
  it('fires every intervalMs on the route clock and skips a tick while the previous one still runs', async () => {
    const clock = new ManualClock();
    const timer = timerEntrypoint({ intervalMs: 1_000 });
    const ticks: Array<[number, number]> = [];
    let gate = deferred();
    const r = route({
      entrypoint: timer,
      target: async (tick: TimerTick) => {
        ticks.push([tick.tick, tick.firedAt]);
        if (tick.tick === 2) await gate.promise;
      },
    });
    new RunnerContext({ routes: [r], clock });
    await r.start();
    await clock.advance(999);
    expect(ticks).toEqual([]);
    await clock.advance(2_001);
    expect(ticks).toEqual([
      [1, 1_000],
      [2, 2_000],
    ]);
    expect(timer.skipped).toBe(1);
    gate.resolve();
    gate = deferred();
    await clock.advance(1_000);
    expect(ticks.at(-1)).toEqual([3, 4_000]);
    const report = await r.stop();
    expect(report.returned).toEqual([]);
    await clock.advance(10_000);
    expect(ticks).toHaveLength(3);
    expect(clock.pending).toBe(0);
  });

  it('runAtStart fires at once; terminal failures go to its dead-letter sink; async retries are one-shot timers handed back at stop', async () => {
    const clock = new ManualClock();
    const deadLetters = new MemoryDeadLetters();
    const timer = timerEntrypoint({
      intervalMs: 10_000,
      runAtStart: true,
      deadLetters,
      name: 'nightly',
    });
    let calls = 0;
    const r = route({
      metricLabel: 'nightly',
      entrypoint: timer,
      target: () => {
        calls++;
        throw new Error('no database');
      },
      backoff: asyncBackoff({ maxRetries: 1, delay: 500 }),
    });
    new RunnerContext({ routes: [r], clock });
    await r.start();
    await clock.advance(0);
    expect(calls).toBe(1);
    await clock.advance(500);
    expect(calls).toBe(2);
    expect(deadLetters.list()).toMatchObject([
      {
        route: 'nightly',
        entrypoint: 'nightly',
        reason: 'retries-exhausted',
        attempts: 2,
        message: { tick: 1, firedAt: 0 },
      },
    ]);
    await clock.advance(9_500);
    expect(calls).toBe(3);
    const report = await r.stop();
    expect(report.returned).toMatchObject([{ route: 'nightly', entrypoint: 'nightly' }]);
    expect(clock.pending).toBe(0);
  });

  it('rejects bad options with INVALID_OPTIONS', () => {
    for (const options of [
      { intervalMs: 0 },
      { intervalMs: Number.NaN },
      {},
      { intervalMs: 5, every: 3 },
    ])
      expect(() => timerEntrypoint(options as never)).toThrow(
        expect.objectContaining({ code: 'INVALID_OPTIONS' }),
      );
  });
});
