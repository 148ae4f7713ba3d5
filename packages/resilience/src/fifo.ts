/** Storage kept when the queue empties; beyond this many slots it is released instead. */
const KEEP_SLOTS = 4096;

/**
 * A first-in first-out queue: an array with head and tail indexes, compacted when half of it is
 * consumed, so `push` and `shift` are amortised O(1) without `Array.prototype.shift`'s O(n) copy.
 * When it empties, only the indexes reset: the array keeps its slots (up to 4 096), so a queue
 * that fills and drains, the common case, allocates nothing. Used for every wait queue in `@x`
 * (bulkheads, admission queues, brokers, in-memory job queues).
 */
export class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;
  private tail = 0;

  /** Items queued. */
  get length(): number {
    return this.tail - this.head;
  }

  /** Appends `item` at the tail. */
  push(item: T): void {
    if (this.tail < this.items.length) this.items[this.tail] = item;
    else this.items.push(item);
    this.tail++;
  }

  /** Removes and returns the oldest item (undefined when empty). */
  shift(): T | undefined {
    const head = this.head;
    if (head === this.tail) return undefined;
    const items = this.items;
    const item = items[head];
    items[head] = undefined;
    if (head + 1 === this.tail) this.reset();
    else if (head >= 1024 && head * 2 >= this.tail) {
      // half consumed: move the rest to the front
      const n = this.tail - head - 1;
      items.copyWithin(0, head + 1, this.tail);
      items.fill(undefined, n, this.tail);
      this.head = 0;
      this.tail = n;
    } else this.head = head + 1;
    return item;
  }

  /** The oldest item without removing it. */
  peek(): T | undefined {
    return this.head < this.tail ? this.items[this.head] : undefined;
  }

  /** Removes the first occurrence of `item` (O(n)); true when it was queued. */
  remove(item: T): boolean {
    for (let i = this.head; i < this.tail; i++) {
      if (this.items[i] === item) {
        this.items.copyWithin(i, i + 1, this.tail);
        this.items[--this.tail] = undefined;
        if (this.head === this.tail) this.reset();
        return true;
      }
    }
    return false;
  }

  /** Removes and returns every item that matches `predicate`, keeping the order of the rest. */
  removeWhere(predicate: (item: T) => boolean): T[] {
    const removed: T[] = [];
    const kept: (T | undefined)[] = [];
    for (let i = this.head; i < this.tail; i++) {
      const item = this.items[i] as T;
      (predicate(item) ? removed : kept).push(item);
    }
    this.items = kept;
    this.head = 0;
    this.tail = kept.length;
    return removed;
  }

  /** Removes and returns every item, oldest first. */
  drain(): T[] {
    const all = this.items.slice(this.head, this.tail) as T[];
    this.items.fill(undefined, this.head, this.tail);
    this.reset();
    return all;
  }

  /** Iterates oldest first without removing. */
  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = this.head; i < this.tail; i++) yield this.items[i] as T;
  }

  private reset(): void {
    this.head = 0;
    this.tail = 0;
    if (this.items.length > KEEP_SLOTS) this.items = [];
  }
}
