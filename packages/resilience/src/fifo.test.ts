import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Fifo } from './fifo.js';

describe('Fifo', () => {
  it('keeps insertion order across pushes, shifts and compaction', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.integer(), fc.constant<'shift'>('shift')), { maxLength: 5000 }),
        ops => {
          const fifo = new Fifo<number>();
          const model: number[] = [];
          for (const op of ops) {
            if (op === 'shift') expect(fifo.shift()).toBe(model.shift());
            else {
              fifo.push(op);
              model.push(op);
            }
            expect(fifo.length).toBe(model.length);
            expect(fifo.peek()).toBe(model[0]);
          }
          expect([...fifo]).toEqual(model);
        },
      ),
      { numRuns: 50 },
    );
  });

  it('compacts its storage after many shifts', () => {
    const fifo = new Fifo<number>();
    for (let i = 0; i < 10_000; i++) fifo.push(i);
    for (let i = 0; i < 9_000; i++) expect(fifo.shift()).toBe(i);
    expect(fifo.length).toBe(1_000);
    expect((fifo as unknown as { tail: number }).tail).toBeLessThan(4_000);
    expect(fifo.drain()).toEqual(Array.from({ length: 1000 }, (_, i) => 9000 + i));
    expect(fifo.length).toBe(0);
    expect(fifo.shift()).toBeUndefined();
  });

  it('removes an item or every matching item and keeps the order of the rest', () => {
    const fifo = new Fifo<string>();
    for (const s of ['a', 'b', 'c', 'd', 'e']) fifo.push(s);
    fifo.shift();
    expect(fifo.remove('c')).toBe(true);
    expect(fifo.remove('zz')).toBe(false);
    expect(fifo.removeWhere(s => s === 'b' || s === 'e')).toEqual(['b', 'e']);
    expect([...fifo]).toEqual(['d']);
  });
});
