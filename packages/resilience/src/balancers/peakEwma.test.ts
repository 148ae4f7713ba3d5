import { describe, expect, it } from 'vitest';
import { ManualClock } from '../manualClock.js';
import { peakEwma } from './peakEwma.js';

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

describe('peakEwma', () => {
  it('moves traffic away from a slow endpoint', async () => {
    const clock = new ManualClock();
    const balancer = peakEwma<string>({ clock, random: mulberry32(1) });
    const latency: Record<string, number> = { slow: 200, fast1: 10, fast2: 12 };
    const counts: Record<string, number> = { slow: 0, fast1: 0, fast2: 0 };
    for (let i = 0; i < 600; i++) {
      const e = balancer.pick(['slow', 'fast1', 'fast2'])!;
      counts[e]!++;
      balancer.start(e);
      await clock.advance(1);
      balancer.end(e, { ok: true, durationMs: latency[e]! });
    }
    expect(counts.slow).toBeLessThan(30);
    expect(counts.fast1! + counts.fast2!).toBeGreaterThan(570);
  });

  it('weighs latency by the requests in flight', () => {
    const clock = new ManualClock();
    const balancer = peakEwma<string>({ clock, random: mulberry32(2) });
    for (const [e, ms] of [
      ['a', 10],
      ['b', 30],
    ] as const) {
      balancer.start(e);
      balancer.end(e, { ok: true, durationMs: ms });
    }
    expect(balancer.pick(['a', 'b'])).toBe('a'); // 10 * 1 < 30 * 1
    for (let i = 0; i < 3; i++) balancer.start('a');
    expect(balancer.pick(['a', 'b'])).toBe('b'); // 10 * 4 > 30 * 1
  });

  it('uses defaultMs + 1 for endpoints without samples', () => {
    const clock = new ManualClock();
    const optimistic = peakEwma<string>({ clock, random: mulberry32(3) });
    const pessimistic = peakEwma<string>({ clock, random: mulberry32(3), defaultMs: 100 });
    for (const balancer of [optimistic, pessimistic]) {
      balancer.start('known');
      balancer.end('known', { ok: true, durationMs: 50 });
    }
    expect(optimistic.pick(['known', 'new'])).toBe('new'); // 1 < 50
    expect(pessimistic.pick(['known', 'new'])).toBe('known'); // 50 < 101
  });

  it('decays the estimate of an idle endpoint so it gets probed again', async () => {
    const clock = new ManualClock();
    const balancer = peakEwma<string>({ clock, random: mulberry32(4), decayMs: 1000 });
    for (const [e, ms] of [
      ['slow', 500],
      ['fast', 20],
    ] as const) {
      balancer.start(e);
      balancer.end(e, { ok: true, durationMs: ms });
    }
    expect(balancer.pick(['slow', 'fast'])).toBe('fast');
    // 'fast' keeps serving (and stays at 20ms); 'slow' decays: 500 * e^-4 ≈ 9 < 20.
    for (let i = 0; i < 4; i++) {
      await clock.advance(1000);
      balancer.start('fast');
      balancer.end('fast', { ok: true, durationMs: 20 });
    }
    expect(balancer.pick(['slow', 'fast'])).toBe('slow');
  });

  it('honours exclude and empty lists', () => {
    const balancer = peakEwma<string>({ clock: new ManualClock() });
    expect(balancer.pick(['a', 'b'], new Set(['a']))).toBe('b');
    expect(balancer.pick(['a'], new Set(['a']))).toBeUndefined();
    expect(balancer.pick([])).toBeUndefined();
  });

  it('rejects bad options', () => {
    expect(() => peakEwma({ defaultMs: -1 })).toThrow(RangeError);
    expect(() => peakEwma({ decayMs: -5 })).toThrow(RangeError);
    expect(() => peakEwma({ random: 'no' as never })).toThrow(TypeError);
  });
});
