import { describe, expect, it } from 'vitest';
import { InvalidConfigError } from './errors.js';
import { CompiledSplit, SPLIT_BUCKETS, bucketOf } from './trafficSplit.js';

describe('traffic split', () => {
  it('maps buckets to versions by weight', () => {
    const split = new CompiledSplit({ module: 'api', weights: { v1: 9, v2: 1 } });
    const counts: Record<string, number> = {};
    for (let b = 0; b < SPLIT_BUCKETS; b++)
      counts[split.pick(b)] = (counts[split.pick(b)] ?? 0) + 1;
    expect(counts).toEqual({ v1: 900, v2: 100 });
    expect(split.pick(899)).toBe('v1');
    expect(split.pick(900)).toBe('v2');
  });

  it('skips zero weights', () => {
    const split = new CompiledSplit({ module: 'api', weights: { v1: 0, v2: 3 } });
    expect(split.versions).toEqual(['v2']);
    expect(split.pick(0)).toBe('v2');
  });

  it('reads and writes the sticky cookie', () => {
    const split = new CompiledSplit({
      module: 'api',
      weights: { v1: 1, v2: 1 },
      cookieName: 'SPLIT',
    });
    expect(split.bucketFromCookie('SPLIT=42')).toBe(42);
    expect(split.bucketFromCookie('a=1; SPLIT=999; b=2')).toBe(999);
    expect(split.bucketFromCookie('XSPLIT=5')).toBeUndefined();
    expect(split.bucketFromCookie('XSPLIT=5; SPLIT=6')).toBe(6);
    expect(split.bucketFromCookie('SPLIT=1000')).toBeUndefined();
    expect(split.bucketFromCookie('SPLIT=abc')).toBeUndefined();
    expect(split.bucketFromCookie('SPLIT=')).toBeUndefined();
    expect(split.bucketFromCookie(undefined)).toBeUndefined();
    expect(split.setCookie(7)).toMatch(/^SPLIT=7; Path=\/; Max-Age=\d+; HttpOnly; SameSite=Lax$/);
  });

  it('hashes keys into stable buckets', () => {
    expect(bucketOf('10.0.0.1')).toBe(bucketOf('10.0.0.1'));
    const seen = new Set(Array.from({ length: 200 }, (_, i) => bucketOf(`client-${i}`)));
    expect(seen.size).toBeGreaterThan(150);
    for (const b of seen) expect(b).toBeGreaterThanOrEqual(0);
  });

  it.each([
    [{ module: 'api', weights: {} }, /must not all be 0/],
    [{ module: 'api', weights: { v1: -1 } }, /finite number >= 0/],
    [{ module: 'api', weights: { v1: 1 }, stickyBy: 'header' }, /stickyBy/],
    [{ module: 'api', weights: { v1: 1 }, cookieName: 'a b' }, /cookie name/],
    [{ module: '', weights: { v1: 1 } }, /needs a module/],
  ])('rejects %j', (split, message) => {
    expect(() => new CompiledSplit(split as never)).toThrow(InvalidConfigError);
    expect(() => new CompiledSplit(split as never)).toThrow(message);
  });

  it('rejects unknown versions', () => {
    expect(() => new CompiledSplit({ module: 'api', weights: { v3: 1 } }, new Set(['v1']))).toThrow(
      /"v3" does not exist/,
    );
  });
});
