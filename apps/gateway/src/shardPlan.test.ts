import { describe, expect, it } from 'vitest';
import { catalogItems } from './catalogItems.js';
import { shardOfItem, shardsOf } from './shardPlan.js';

describe('shardsOf', () => {
  it('places every key on `replicas` distinct instances, so any one instance can die', () => {
    const holders = new Map<number, number[]>();
    for (let instance = 0; instance < 3; instance++)
      for (const key of shardsOf(instance, 3, 2))
        holders.set(key, [...(holders.get(key) ?? []), instance]);
    expect([...holders].sort()).toEqual([
      [0, [0, 2]],
      [1, [0, 1]],
      [2, [1, 2]],
    ]);
    for (let dead = 0; dead < 3; dead++)
      for (const [, instances] of holders) expect(instances.some(i => i !== dead)).toBe(true);
  });

  it('never repeats a key when replicas exceed the key count', () => {
    expect(shardsOf(1, 2, 5)).toEqual([1, 0]);
  });

  it('spreads the demo catalog over every key', () => {
    const counts = [0, 0, 0];
    for (const item of catalogItems()) counts[shardOfItem(item.id, 3)]!++;
    expect(counts).toEqual([20, 20, 20]);
  });
});
