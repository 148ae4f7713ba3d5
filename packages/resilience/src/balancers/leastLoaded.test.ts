import { describe, expect, it } from 'vitest';
import { leastLoaded } from './leastLoaded.js';
import { loadCost } from './loadCost.js';

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

function sequence(...values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length]!;
}

describe('leastLoaded', () => {
  it('prefers the less loaded of two sampled candidates', () => {
    const balancer = leastLoaded<string>({ random: mulberry32(1) });
    for (let i = 0; i < 5; i++) balancer.start('a');
    balancer.start('b');
    const counts: Record<string, number> = { a: 0, b: 0, c: 0 };
    for (let i = 0; i < 3000; i++) counts[balancer.pick(['a', 'b', 'c'])!]!++;
    // 'a' always loses its comparison; 'b' only wins against 'a'.
    expect(counts.a).toBe(0);
    expect(counts.b).toBeGreaterThan(700);
    expect(counts.c).toBeGreaterThan(counts.b! + 700);
  });

  it('penalises consecutive failures, counting at most 10', () => {
    const balancer = leastLoaded<string>({ random: mulberry32(2), errorPenalty: 5 });
    balancer.start('a');
    balancer.end('a', { ok: false, durationMs: 1 });
    for (let i = 0; i < 4; i++) balancer.start('b'); // cost 4 < 5
    expect(balancer.pick(['a', 'b'])).toBe('b');
    for (let i = 0; i < 20; i++) {
      balancer.start('a');
      balancer.end('a', { ok: false, durationMs: 1 });
    }
    for (let i = 0; i < 47; i++) balancer.start('b'); // 51 > 5 * 10
    expect(balancer.pick(['a', 'b'])).toBe('a');
    balancer.start('a');
    balancer.end('a', { ok: true, durationMs: 1 }); // a success resets the penalty
    expect(balancer.load('a').consecutiveFailures).toBe(0);
    expect(balancer.pick(['a', 'b'])).toBe('a');
  });

  it('breaks ties with the injected random', () => {
    const first = leastLoaded<string>({ random: sequence(0.1, 0.5) });
    const second = leastLoaded<string>({ random: sequence(0.9, 0.5) });
    expect(first.pick(['a', 'b'])).toBe('a');
    expect(second.pick(['a', 'b'])).toBe('b');
    const balancer = leastLoaded<string>({ random: mulberry32(3) });
    const seen = new Set<string>();
    for (let i = 0; i < 50; i++) seen.add(balancer.pick(['a', 'b', 'c'])!);
    expect(seen).toEqual(new Set(['a', 'b', 'c']));
  });

  it('returns a single eligible candidate without drawing random numbers', () => {
    const balancer = leastLoaded<string>({
      random: () => {
        throw new Error('random called');
      },
    });
    expect(balancer.pick(['a'])).toBe('a');
    expect(balancer.pick(['a', 'b', 'c'], new Set(['a', 'c']))).toBe('b');
    expect(balancer.pick(['a', 'b'], new Set(['a', 'b']))).toBeUndefined();
    expect(balancer.pick([])).toBeUndefined();
  });

  it('samples two distinct eligible candidates under exclusion', () => {
    const balancer = leastLoaded<string>({ random: mulberry32(4) });
    balancer.start('b');
    const exclude = new Set(['a', 'd']);
    for (let i = 0; i < 100; i++) expect(balancer.pick(['a', 'b', 'c', 'd'], exclude)).toBe('c');
  });

  it('spreads picks fairly under simulated concurrency', () => {
    const rnd = mulberry32(42);
    const balancer = leastLoaded<number>({ random: mulberry32(7) });
    const endpoints = [0, 1, 2];
    const totals = [0, 0, 0];
    const due: number[][] = []; // step -> endpoints whose request ends then
    const picks = 10_000;
    for (let step = 0; step < picks; step++) {
      for (const e of due[step] ?? []) balancer.end(e, { ok: true, durationMs: 1 });
      const e = balancer.pick(endpoints)!;
      totals[e]!++;
      balancer.start(e);
      const at = step + 1 + Math.floor(rnd() * 30);
      (due[at] ??= []).push(e);
    }
    const mean = picks / endpoints.length;
    expect(Math.max(...totals) - Math.min(...totals)).toBeLessThanOrEqual(0.05 * mean);
  });

  it('rejects a bad errorPenalty', () => {
    expect(() => leastLoaded({ errorPenalty: -1 })).toThrow(RangeError);
    expect(() => leastLoaded({ errorPenalty: Number.NaN })).toThrow(RangeError);
  });
});

describe('leastLoaded failure penalty', () => {
  it('fades while the failed endpoint rests, so it is tried again under light load', async () => {
    const { ManualClock } = await import('../manualClock.js');
    const clock = new ManualClock();
    let i = 0;
    const sequence = [0.1, 0.6]; // P2C samples both endpoints, in either order
    const balancer = leastLoaded<string>({
      clock,
      decayMs: 1_000,
      random: () => sequence[i++ % 2]!,
    });
    balancer.start('a');
    balancer.end('a', { ok: false, durationMs: 1 });
    balancer.start('b'); // b is busy with one request
    const picks = () =>
      Array.from({ length: 10 }, () => balancer.pick(['a', 'b'])).filter(p => p === 'a').length;
    expect(picks()).toBe(0); // penalty 5 > 1 in flight
    await clock.advance(5_000); // exp(-5) * 5 ≈ 0.03 < 1
    expect(picks()).toBe(10);
  });
});

describe('leastLoaded capacityOf', () => {
  it('sends twice the requests to an endpoint with twice the capacity', () => {
    let seed = 7;
    const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
    const balancer = leastLoaded<string>({ random, capacityOf: e => (e === 'big' ? 2 : 1) });
    const endpoints = ['big', 'small'];
    // Fill to 30 in flight without ending any: the cost divides by capacity, so big gets ~2/3.
    const counts = { big: 0, small: 0 };
    for (let i = 0; i < 30; i++) {
      const e = balancer.pick(endpoints)! as 'big' | 'small';
      balancer.start(e);
      counts[e]++;
    }
    expect(counts.big).toBe(20);
    expect(counts.small).toBe(10);
  });

  it('rejects a capacityOf that is not a function', () => {
    expect(() => leastLoaded({ capacityOf: 3 as never })).toThrow(/capacityOf must be a function/);
  });
});

describe('loadCost', () => {
  it('adds the failure penalty, faded by rest, and divides by capacity', () => {
    const load = {
      inFlight: 2,
      requests: 0,
      failures: 0,
      consecutiveFailures: 20,
      ewmaMs: 0,
      lastUpdate: 0,
    };
    expect(loadCost(load, { errorPenalty: 5 })).toBe(52);
    expect(loadCost(load, { errorPenalty: 5, rested: 0.5, capacity: 2 })).toBe(13.5);
    expect(loadCost({ ...load, consecutiveFailures: 0 }, { errorPenalty: 5, capacity: 0 })).toBe(2);
  });
});
