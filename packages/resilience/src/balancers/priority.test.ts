import { describe, expect, it } from 'vitest';
import type { EndpointLoad } from './balancer.js';
import { priority } from './priority.js';

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

const rank: Record<string, number | null> = { a: 3, b: 1, c: null, d: 1, e: 2 };

describe('priority', () => {
  it('picks the lowest score', () => {
    const balancer = priority<string>(e => rank[e] ?? null);
    expect(balancer.pick(['a', 'e', 'c'])).toBe('e');
    expect(balancer.pick(['a', 'c'])).toBe('a');
  });

  it('eliminates candidates scored null', () => {
    const balancer = priority<string>(e => rank[e] ?? null);
    expect(balancer.pick(['c', 'a'])).toBe('a');
    expect(balancer.pick(['c'])).toBeUndefined();
    expect(balancer.pick(['c', 'zz'])).toBeUndefined();
    expect(balancer.pick([])).toBeUndefined();
  });

  it('breaks ties uniformly at random', () => {
    const balancer = priority<string>(e => rank[e] ?? null, { random: mulberry32(5) });
    const counts: Record<string, number> = { b: 0, d: 0 };
    for (let i = 0; i < 2000; i++) counts[balancer.pick(['a', 'b', 'c', 'd', 'e'])!]!++;
    expect(counts.b! + counts.d!).toBe(2000);
    expect(counts.b).toBeGreaterThan(850);
    expect(counts.d).toBeGreaterThan(850);
  });

  it('breaks ties with the injected random', () => {
    // The second tie replaces the first when random() * 2 < 1.
    expect(priority<string>(() => 0, { random: () => 0.4 }).pick(['x', 'y'])).toBe('y');
    expect(priority<string>(() => 0, { random: () => 0.6 }).pick(['x', 'y'])).toBe('x');
  });

  it('scores from the tracked load and honours exclude', () => {
    const seen: EndpointLoad[] = [];
    const balancer = priority<string>((_, load) => {
      seen.push({ ...load });
      return load.inFlight;
    });
    balancer.start('a');
    balancer.start('a');
    balancer.start('b');
    expect(balancer.pick(['a', 'b', 'c'])).toBe('c');
    expect(seen.map(l => l.inFlight)).toEqual([2, 1, 0]);
    expect(balancer.pick(['a', 'b', 'c'], new Set(['c']))).toBe('b');
    expect(balancer.pick(['a', 'b'], new Set(['a', 'b']))).toBeUndefined();
  });

  it('rejects bad scores and a missing function', () => {
    expect(() => priority(() => Number.NaN).pick(['a'])).toThrow(TypeError);
    expect(() => priority(() => '1' as never).pick(['a'])).toThrow(TypeError);
    expect(() => priority(undefined as never)).toThrow(TypeError);
  });
});
