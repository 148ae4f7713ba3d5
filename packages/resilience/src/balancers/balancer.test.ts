import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../manualClock.js';
import type { Balancer } from './balancer.js';
import { LoadTracker, createBalancer, emptyLoad } from './balancer.js';
import { leastLoaded } from './leastLoaded.js';
import { peakEwma } from './peakEwma.js';
import { priority } from './priority.js';
import { random } from './random.js';
import { roundRobin } from './roundRobin.js';

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('LoadTracker', () => {
  it('creates zeroed stats on first use and counts starts and ends', () => {
    const clock = new ManualClock(1000);
    const tracker = new LoadTracker<string>({ clock });
    expect(tracker.load('a')).toEqual({
      inFlight: 0,
      requests: 0,
      failures: 0,
      consecutiveFailures: 0,
      ewmaMs: 0,
      lastUpdate: 0,
    });
    tracker.start('a');
    tracker.start('a');
    expect(tracker.load('a')).toMatchObject({ inFlight: 2, lastUpdate: 1000 });
    tracker.end('a', { ok: false, durationMs: 10 });
    tracker.end('a', { ok: false, durationMs: 10 });
    expect(tracker.load('a')).toMatchObject({
      inFlight: 0,
      requests: 2,
      failures: 2,
      consecutiveFailures: 2,
    });
    tracker.end('a', { ok: true, durationMs: 10 });
    expect(tracker.load('a')).toMatchObject({
      inFlight: 0,
      requests: 3,
      failures: 2,
      consecutiveFailures: 0,
    });
  });

  it('a neutral end counts the request and its latency but not for health', async () => {
    const clock = new ManualClock(0);
    const tracker = new LoadTracker<string>({ clock });
    tracker.start('a');
    tracker.end('a', { ok: false, durationMs: 5 });
    tracker.start('a');
    await clock.advance(40);
    // ok: true would reset the streak; neutral leaves it (an aborted try says nothing)
    tracker.end('a', { ok: true, neutral: true, durationMs: 40 });
    expect(tracker.load('a')).toMatchObject({
      inFlight: 0,
      requests: 2,
      failures: 1,
      consecutiveFailures: 1,
      ewmaMs: 40,
    });
    tracker.start('a');
    tracker.end('a', { ok: false, neutral: true, durationMs: 1 });
    expect(tracker.load('a')).toMatchObject({ requests: 3, failures: 1, consecutiveFailures: 1 });
    tracker.start('a');
    tracker.end('a', { ok: true, durationMs: 1 });
    expect(tracker.load('a').consecutiveFailures).toBe(0);
  });

  it('emptyLoad returns a new zeroed load each time', () => {
    const a = emptyLoad();
    expect(a).toEqual(new LoadTracker<string>().peek('x'));
    expect(emptyLoad()).not.toBe(a);
    expect(Object.isFrozen(a)).toBe(false);
  });

  it('keeps a peak EWMA of the latency', async () => {
    const clock = new ManualClock();
    const tracker = new LoadTracker<string>({ clock, decayMs: 1000 });
    tracker.start('a');
    await clock.advance(100);
    tracker.end('a', { ok: true, durationMs: 100 });
    expect(tracker.load('a').ewmaMs).toBe(100); // first sample
    tracker.start('a');
    await clock.advance(300);
    tracker.end('a', { ok: true, durationMs: 300 });
    expect(tracker.load('a').ewmaMs).toBe(300); // a peak replaces the estimate
    tracker.start('a');
    await clock.advance(50);
    tracker.end('a', { ok: true, durationMs: 50 });
    const w = Math.exp(-50 / 1000);
    expect(tracker.load('a').ewmaMs).toBeCloseTo(300 * w + 50 * (1 - w), 9);
    expect(tracker.load('a').lastUpdate).toBe(450);
  });

  it('decays the estimate over idle time when a request starts', async () => {
    const clock = new ManualClock();
    const tracker = new LoadTracker<string>({ clock, decayMs: 1000 });
    tracker.start('a');
    tracker.end('a', { ok: true, durationMs: 200 });
    await clock.advance(1000);
    tracker.start('a');
    expect(tracker.load('a').ewmaMs).toBeCloseTo(200 / Math.E, 9);
  });

  it('ignores ends of endpoints without stats and forgets endpoints', () => {
    const tracker = new LoadTracker<string>({ clock: new ManualClock() });
    tracker.end('ghost', { ok: true, durationMs: 1 });
    expect(tracker.size).toBe(0);
    tracker.start('a');
    tracker.forget('a');
    tracker.end('a', { ok: true, durationMs: 1 });
    expect(tracker.size).toBe(0);
    expect(tracker.load('a').requests).toBe(0);
  });

  it('peeks without creating stats', () => {
    const tracker = new LoadTracker<string>({ clock: new ManualClock() });
    expect(tracker.peek('a').inFlight).toBe(0);
    expect(Object.isFrozen(tracker.peek('a'))).toBe(true);
    expect(tracker.size).toBe(0);
    tracker.start('a');
    expect(tracker.peek('a')).toBe(tracker.load('a'));
  });

  it('does not let inFlight go negative', () => {
    const tracker = new LoadTracker<string>({ clock: new ManualClock() });
    tracker.load('a');
    tracker.end('a', { ok: true, durationMs: 1 });
    expect(tracker.load('a').inFlight).toBe(0);
  });

  it('rejects bad input', () => {
    expect(() => new LoadTracker({ decayMs: 0 })).toThrow(RangeError);
    expect(() => new LoadTracker({ decayMs: Number.NaN })).toThrow(RangeError);
    expect(() => new LoadTracker({ clock: {} as never })).toThrow(TypeError);
    const tracker = new LoadTracker<string>({ clock: new ManualClock() });
    tracker.start('a');
    expect(() => tracker.end('a', { ok: true, durationMs: -1 })).toThrow(RangeError);
    expect(() => tracker.end('a', { ok: true, durationMs: Number.NaN })).toThrow(/durationMs/);
    expect(tracker.load('a').inFlight).toBe(1);
  });

  it('createBalancer delegates the load methods to the tracker', () => {
    const tracker = new LoadTracker<string>({ clock: new ManualClock() });
    const balancer = createBalancer<string>('first', tracker, candidates => candidates[0]);
    expect(balancer.name).toBe('first');
    expect(balancer.tracker).toBe(tracker);
    expect(balancer.pick(['x', 'y'])).toBe('x');
    balancer.start('x');
    expect(tracker.load('x').inFlight).toBe(1);
    balancer.end('x', { ok: true, durationMs: 3 });
    expect(balancer.load('x')).toBe(tracker.load('x'));
    balancer.forget('x');
    expect(tracker.size).toBe(0);
  });
});

describe('every balancer', () => {
  const factories: Record<string, (rnd: () => number) => Balancer<number>> = {
    roundRobin: () => roundRobin(),
    random: rnd => random({ random: rnd }),
    leastLoaded: rnd => leastLoaded({ random: rnd }),
    peakEwma: rnd => peakEwma({ random: rnd }),
    priority: rnd => priority((_, load) => load.inFlight, { random: rnd }),
  };

  it.each(Object.keys(factories))('%s: returns undefined on an empty list', name => {
    const balancer = factories[name]!(Math.random);
    expect(balancer.pick([])).toBeUndefined();
    expect(balancer.pick([], new Set([1]))).toBeUndefined();
    expect(balancer.name).toBe(name);
  });

  it('never picks an excluded or non-candidate endpoint (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...Object.keys(factories)),
        fc.array(fc.integer({ min: 0, max: 20 }), { maxLength: 12 }),
        fc.array(fc.integer({ min: 0, max: 20 }), { maxLength: 12 }),
        fc.array(fc.integer({ min: 0, max: 20 }), { maxLength: 20 }),
        fc.integer(),
        (name, candidates, excluded, started, seed) => {
          const balancer = factories[name]!(mulberry32(seed));
          for (const e of started) balancer.start(e);
          const exclude = new Set(excluded);
          for (let round = 0; round < 3; round++) {
            const picked = balancer.pick(candidates, exclude);
            const anyEligible = candidates.some(c => !exclude.has(c));
            if (!anyEligible) return picked === undefined;
            if (picked === undefined || !candidates.includes(picked) || exclude.has(picked)) {
              return false;
            }
            balancer.start(picked);
          }
          return true;
        },
      ),
      { numRuns: 500 },
    );
  });
});
