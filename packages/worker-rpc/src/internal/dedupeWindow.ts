import type { Clock } from '@x/resilience';

interface Entry<V> {
  value: V;
  expiresAt: number;
}

/**
 * A bounded map with a time-to-live: at most `max` entries, each kept `ttlMs` after `set`
 * (`Infinity` until `set` again with `finite`). Expired entries are dropped when read and swept from
 * the oldest end on every write; the oldest entries are evicted beyond `max`. No timers.
 */
export class DedupeWindow<V> {
  private readonly entries = new Map<string, Entry<V>>();

  constructor(
    readonly ttlMs: number,
    readonly max: number,
    private readonly clock: Clock,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  get(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= this.clock.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  /** Stores `value`; `pinned` entries (in flight) do not expire until stored again unpinned. */
  set(key: string, value: V, pinned = false): void {
    const now = this.clock.now();
    this.entries.delete(key);
    this.entries.set(key, { value, expiresAt: pinned ? Infinity : now + this.ttlMs });
    this.sweep(now);
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }

  private sweep(now: number): void {
    if (this.entries.size > this.max) {
      for (const key of this.entries.keys()) {
        this.entries.delete(key);
        if (this.entries.size <= this.max) break;
      }
    }
    // Finite entries are inserted in expiry order, so the expired ones sit at the front (pinned,
    // in-flight entries are skipped). A bounded number of steps keeps writes O(1).
    let steps = 16;
    for (const [key, entry] of this.entries) {
      if (steps-- <= 0) break;
      if (entry.expiresAt <= now) this.entries.delete(key);
      else if (entry.expiresAt !== Infinity) break;
    }
  }
}
