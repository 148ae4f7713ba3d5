import { ManualClock } from '@x/resilience';
import { describe, expect, test } from 'vitest';
import { DedupeWindow } from './dedupeWindow.js';

describe('DedupeWindow', () => {
  test('entries expire after ttl; pinned ones wait until unpinned', () => {
    const clock = new ManualClock();
    const w = new DedupeWindow<string>(1_000, 10, clock);
    w.set('a', 'A');
    w.set('p', 'P', true);
    clock.now = () => 999;
    expect(w.get('a')).toBe('A');
    clock.now = () => 1_000;
    expect(w.get('a')).toBeUndefined();
    expect(w.get('p')).toBe('P');
    w.set('p', 'done');
    clock.now = () => 2_001;
    expect(w.get('p')).toBeUndefined();
  });

  test('never holds more than max; expired entries are swept on writes', () => {
    const clock = new ManualClock();
    let now = 0;
    clock.now = () => now;
    const w = new DedupeWindow<number>(100, 5, clock);
    for (let i = 0; i < 50; i++) w.set(`k${i}`, i);
    expect(w.size).toBe(5);
    expect(w.get('k49')).toBe(49);
    expect(w.get('k0')).toBeUndefined();
    now = 1_000;
    w.set('fresh', 1);
    expect(w.size).toBe(1);
  });
});
