import { systemClock, type Clock, type Metrics, type Tags } from '@x/resilience';
import { describe, expect, it } from 'vitest';
import type { Delivery } from './entrypoint.js';
import type { Outcome } from './outcome.js';
import { Route, route } from './route.js';
import type { RouteWorker } from './routeWorker.js';
import { Runner } from './runner.js';
import { deferred } from './test/helpers.js';

/** A clock that counts its reads; the target moves it forward by `step` ms. */
function countingClock(): Clock & { reads: number; t: number } {
  return {
    reads: 0,
    t: 1_000,
    now() {
      this.reads++;
      return this.t;
    },
    setTimeout: systemClock.setTimeout,
    clearTimeout: systemClock.clearTimeout,
  };
}

/** A sink that keeps every call; `recordsHistograms` as given (absent: not declared). */
function recordingMetrics(recordsHistograms?: boolean) {
  const calls: Array<[string, string, number]> = [];
  const sink: Metrics = {
    increment: (name: string, value = 1, _tags?: Tags) => void calls.push(['increment', name, value]),
    gauge: (name: string, value: number) => void calls.push(['gauge', name, value]),
    histogram: (name: string, value: number) => void calls.push(['histogram', name, value]),
    ...(recordsHistograms === undefined ? {} : { recordsHistograms }),
  };
  return { sink, calls, named: (name: string) => calls.filter(c => c[1] === name) };
}

// A worker's start and duration cost two clock reads per message. A route skips them only while
// nothing can see them; these tests pin that every consumer still gets the true timing.
describe('worker timing', () => {
  it('a sink declaring recordsHistograms: false and no listener: no clock read per message, counters still counted', async () => {
    const clock = countingClock();
    const metrics = recordingMetrics(false);
    const r = route({ translators: [(x: unknown) => x as number], target: (x: number) => x + 1 });
    const runner = new Runner({ routes: [r], clock, metrics: metrics.sink });
    await runner.start();
    const before = clock.reads;
    for (let i = 0; i < 10; i++) expect(await r.startRoute(null, i)).toMatchObject({ value: i + 1 });
    expect(clock.reads - before).toBe(0);
    expect(metrics.named('route.tasks')).toHaveLength(10);
    expect(metrics.named('route.task.duration')).toEqual([]);
    await runner.stop();
  });

  it('a sink that records histograms gets each true duration', async () => {
    const clock = countingClock();
    const metrics = recordingMetrics(); // not declared: histograms recorded
    const r = route({
      target: (x: unknown) => {
        clock.t += 7;
        return x;
      },
    });
    const runner = new Runner({ routes: [r], clock, metrics: metrics.sink });
    await runner.start();
    await r.startRoute(null, 1);
    await r.startRoute(null, 2);
    expect(metrics.named('route.task.duration')).toEqual([
      ['histogram', 'route.task.duration', 7],
      ['histogram', 'route.task.duration', 7],
    ]);
    await runner.stop();
  });

  it('an attempt listener gets the true start and duration, even with a sink that records no histograms', async () => {
    const clock = countingClock();
    const metrics = recordingMetrics(false);
    const r = route({
      target: async (x: unknown) => {
        clock.t += 5;
        await Promise.resolve();
        clock.t += 6;
        return x;
      },
    });
    const runner = new Runner({ routes: [r], clock, metrics: metrics.sink });
    await runner.start();
    await r.startRoute(null, 0); // before the listener: untimed
    const attempts: Array<{ at: number; durationMs: number }> = [];
    r.onEvent(e => {
      if (e.type === 'attempt') attempts.push({ at: e.at, durationMs: e.durationMs });
    });
    const start = clock.t;
    await r.startRoute(null, 1);
    expect(attempts).toEqual([{ at: start, durationMs: 11 }]);
    expect(metrics.named('route.task.duration')).toEqual([]);
    await runner.stop();
  });

  it('a listener that comes while a message waits for its slot gets it timed; the one already running untimed reports no attempt', async () => {
    const clock = countingClock();
    const metrics = recordingMetrics(false);
    const gate = deferred();
    const r = route({
      target: async (x: unknown) => {
        if (x === 'first') await gate.promise;
        clock.t += 4;
        return x;
      },
    });
    const runner = new Runner({ routes: [r], clock, metrics: metrics.sink, maxWorkers: 1 });
    await runner.start();
    const first = r.startRoute(1, 'first');
    const second = r.startRoute(2, 'second'); // waits for the only slot, untimed so far
    const events: Array<[string, unknown, number?]> = [];
    r.onEvent(e => {
      if (e.type === 'attempt') events.push([e.type, e.entryId, e.durationMs]);
      if (e.type === 'outcome') events.push([e.type, e.entryId]);
    });
    gate.resolve();
    await Promise.all([first, second]);
    // the first ran untimed: its outcome is reported, no attempt with a made-up timing
    expect(events).toEqual([
      ['outcome', 1],
      ['attempt', 2, 4],
      ['outcome', 2],
    ]);
    await runner.stop();
  });

  it('an overridden step sees the worker: it is timed whatever the sink', async () => {
    const clock = countingClock();
    const metrics = recordingMetrics(false);
    const seen: Array<[number, number]> = [];
    class Timed extends Route<number, number, number> {
      override handleFinishedWorker(
        delivery: Delivery,
        finished: RouteWorker<number, number, number>,
      ): Outcome<number> | Promise<Outcome<number>> {
        seen.push([finished.startedAt, finished.durationMs]);
        return super.handleFinishedWorker(delivery, finished);
      }
    }
    const r = new Timed({
      target: (x: number) => {
        clock.t += 3;
        return x;
      },
    });
    const runner = new Runner({ routes: [r], clock, metrics: metrics.sink });
    await runner.start();
    const start = clock.t;
    expect(await r.startRoute(null, 4)).toMatchObject({ kind: 'success', value: 4 });
    expect(seen).toEqual([[start, 3]]);
    await runner.stop();
  });
});
