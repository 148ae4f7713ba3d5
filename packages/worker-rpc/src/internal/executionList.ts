/** What an {@link ExecutionList} links: the list's links live in the items themselves. */
export interface Linked<T> {
  prev: T | undefined;
  next: T | undefined;
  listed: boolean;
}

/**
 * An intrusive doubly linked list (insertion order): `add` and `delete` are O(1) and allocate
 * nothing. The worker keeps its running executions in one, rather than in a `Set` (a `Set` of
 * short-lived objects pays an identity hash per item and resizes as it empties and refills with
 * every batch).
 */
export class ExecutionList<T extends Linked<T>> implements Iterable<T> {
  private head: T | undefined;
  private tail: T | undefined;
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(item: T): void {
    if (item.listed) return;
    item.listed = true;
    item.prev = this.tail;
    item.next = undefined;
    if (this.tail) this.tail.next = item;
    else this.head = item;
    this.tail = item;
    this.count++;
  }

  delete(item: T): void {
    if (!item.listed) return;
    item.listed = false;
    if (item.prev) item.prev.next = item.next;
    else this.head = item.next;
    if (item.next) item.next.prev = item.prev;
    else this.tail = item.prev;
    item.prev = item.next = undefined;
    this.count--;
  }

  clear(): void {
    for (const item of this.toArray()) this.delete(item);
  }

  /** The items now, oldest first (a copy: safe to change the list while going through it). */
  toArray(): T[] {
    const out: T[] = [];
    for (let item = this.head; item; item = item.next) out.push(item);
    return out;
  }

  /** Iterates oldest first; do not delete other items while iterating (use {@link toArray}). */
  *[Symbol.iterator](): Iterator<T> {
    for (let item = this.head; item; ) {
      const next = item.next;
      yield item;
      item = next;
    }
  }
}
