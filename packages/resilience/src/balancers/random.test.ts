import { describe, expect, it } from 'vitest';
import { random } from './random.js';

function sequence(...values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length]!;
}

describe('random', () => {
  it('maps the injected random number onto the candidates', () => {
    const balancer = random<string>({ random: sequence(0, 0.34, 0.99, 1, Number.NaN) });
    const endpoints = ['a', 'b', 'c'];
    const picked = Array.from({ length: 5 }, () => balancer.pick(endpoints));
    expect(picked).toEqual(['a', 'b', 'c', 'c', 'a']);
  });

  it('chooses among the eligible candidates only', () => {
    const balancer = random<string>({ random: sequence(0, 0.99) });
    const endpoints = ['a', 'b', 'c', 'd'];
    const exclude = new Set(['a', 'd']);
    expect(balancer.pick(endpoints, exclude)).toBe('b');
    expect(balancer.pick(endpoints, exclude)).toBe('c');
    expect(balancer.pick(endpoints, new Set(endpoints))).toBeUndefined();
    expect(balancer.pick([])).toBeUndefined();
  });

  it('is roughly uniform', () => {
    const balancer = random<number>();
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 8000; i++) counts[balancer.pick([0, 1, 2, 3])!]!++;
    for (const count of counts) expect(count).toBeGreaterThan(1700);
  });

  it('rejects a random option that is not a function', () => {
    expect(() => random({ random: 0.5 as never })).toThrow(TypeError);
  });
});
