import { describe, expect, it } from 'vitest';
import { ManualClock } from '../manualClock.js';
import { roundRobin } from './roundRobin.js';

function picks<E>(pick: () => E | undefined, n: number): (E | undefined)[] {
  return Array.from({ length: n }, pick);
}

describe('roundRobin', () => {
  it('cycles through the candidates in order', () => {
    const balancer = roundRobin<string>();
    const endpoints = ['a', 'b', 'c'];
    expect(picks(() => balancer.pick(endpoints), 7)).toEqual(['a', 'b', 'c', 'a', 'b', 'c', 'a']);
  });

  it('skips excluded candidates and continues after the chosen one', () => {
    const balancer = roundRobin<string>();
    const endpoints = ['a', 'b', 'c'];
    const exclude = new Set(['b']);
    expect(picks(() => balancer.pick(endpoints, exclude), 4)).toEqual(['a', 'c', 'a', 'c']);
    expect(balancer.pick(endpoints, new Set(endpoints))).toBeUndefined();
    expect(balancer.pick([])).toBeUndefined();
  });

  it('stays valid when the list changes size', () => {
    const balancer = roundRobin<string>();
    expect(picks(() => balancer.pick(['a', 'b', 'c', 'd']), 3)).toEqual(['a', 'b', 'c']);
    expect(picks(() => balancer.pick(['a', 'b']), 3)).toEqual(['b', 'a', 'b']);
    expect(picks(() => balancer.pick(['a', 'b', 'c']), 3)).toEqual(['c', 'a', 'b']);
    expect(balancer.pick(['z'])).toBe('z');
  });

  it('tracks loads', () => {
    const balancer = roundRobin<string>({ clock: new ManualClock(5) });
    balancer.start('a');
    expect(balancer.load('a')).toMatchObject({ inFlight: 1, lastUpdate: 5 });
    balancer.end('a', { ok: false, durationMs: 4 });
    expect(balancer.load('a')).toMatchObject({ inFlight: 0, failures: 1, ewmaMs: 4 });
    balancer.forget('a');
    expect(balancer.load('a').requests).toBe(0);
  });
});
