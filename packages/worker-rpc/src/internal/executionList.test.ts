import { describe, expect, test } from 'vitest';
import { ExecutionList, type Linked } from './executionList.js';

class Item implements Linked<Item> {
  prev: Item | undefined;
  next: Item | undefined;
  listed = false;
  constructor(readonly n: number) {}
}

describe('ExecutionList', () => {
  test('keeps insertion order through adds and deletes from the head, middle and tail', () => {
    const list = new ExecutionList<Item>();
    const items = [0, 1, 2, 3, 4].map(n => new Item(n));
    for (const item of items) list.add(item);
    list.add(items[2]!); // already listed: no-op
    expect(list.size).toBe(5);
    list.delete(items[0]!);
    list.delete(items[2]!);
    list.delete(items[4]!);
    list.delete(items[4]!); // not listed any more: no-op
    expect([...list].map(i => i.n)).toEqual([1, 3]);
    expect(list.size).toBe(2);
    list.add(items[0]!);
    expect(list.toArray().map(i => i.n)).toEqual([1, 3, 0]);
    list.clear();
    expect(list.size).toBe(0);
    expect([...list]).toEqual([]);
    expect(items.every(i => !i.listed && i.prev === undefined && i.next === undefined)).toBe(true);
  });

  test('the current item may be deleted while iterating', () => {
    const list = new ExecutionList<Item>();
    const items = [0, 1, 2].map(n => new Item(n));
    for (const item of items) list.add(item);
    const seen: number[] = [];
    for (const item of list) {
      seen.push(item.n);
      list.delete(item);
    }
    expect(seen).toEqual([0, 1, 2]);
    expect(list.size).toBe(0);
  });
});
