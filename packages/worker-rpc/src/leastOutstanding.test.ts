import { describe, expect, test } from 'vitest';
import { leastOutstanding } from './leastOutstanding.js';

describe('leastOutstanding', () => {
  test('picks the fewest in flight relative to capacity, rotating ties, honouring exclude', () => {
    const capacity = new Map([
      ['a', 1],
      ['b', 4],
      ['c', 4],
    ]);
    const lb = leastOutstanding<string>({ capacityOf: e => capacity.get(e)! });
    const all = ['a', 'b', 'c'];
    const first = new Set([lb.pick(all), lb.pick(all), lb.pick(all)]);
    expect(first).toEqual(new Set(all)); // idle endpoints share the load
    lb.start('a'); // a is full (1/1)
    lb.start('b'); // b at 1/4
    expect(lb.pick(all)).toBe('c');
    lb.start('c');
    lb.start('c'); // c at 2/4
    expect(lb.pick(all)).toBe('b');
    expect(lb.pick(all, new Set(['b']))).toBe('c');
    expect(lb.pick(all, new Set(all))).toBeUndefined();
    expect(lb.pick([])).toBeUndefined();
  });

  test('consecutive failures count as load', () => {
    const lb = leastOutstanding<string>({ errorPenalty: 5 });
    lb.start('a');
    lb.end('a', { ok: false, durationMs: 1 });
    for (let i = 0; i < 3; i++) lb.start('b');
    expect(lb.pick(['a', 'b'])).toBe('b'); // 3 in flight < 5 for one failure
    expect(() => leastOutstanding({ errorPenalty: -1 })).toThrow(RangeError);
  });
});
