import type { Disposer } from './emitter.js';
import type { CircuitStateName } from './policy.js';

/** A breaker's state as saved to a store: wall-clock times, so other processes can read it. */
export interface BreakerSnapshot {
  readonly state: CircuitStateName;
  /** Epoch ms after which an open breaker lets a probe through. */
  readonly openUntil: number;
  /** How many times it opened in a row (drives a growing open duration). */
  readonly openCount: number;
  /** The window strategy's own state (cockatiel breakers' `state`). */
  readonly strategy: unknown;
  /** Epoch ms of the change. */
  readonly updatedAt: number;
  /** Id of the breaker instance that saved it (a breaker ignores its own announcements). */
  readonly source?: string;
}

/**
 * Where breakers save their state: a single process uses the in-memory default; replicas can
 * share breaker state through an adapter (`redisBreakerStore` of `@x/resilience-redis`).
 * Local-first: a breaker decides on its own and adopts a peer's open/close announcements through
 * `subscribe`.
 */
export interface BreakerStore {
  load(key: string): Promise<BreakerSnapshot | undefined>;
  save(key: string, snapshot: BreakerSnapshot): Promise<void>;
  /** Called with snapshots saved by others (optional). */
  subscribe?(key: string, listener: (snapshot: BreakerSnapshot) => void): Disposer;
}

/** A {@link BreakerStore} in this process's memory; every breaker sharing it sees the others' saves. */
export function memoryBreakerStore(): BreakerStore & { readonly size: number } {
  const snapshots = new Map<string, BreakerSnapshot>();
  const listeners = new Map<string, Set<(snapshot: BreakerSnapshot) => void>>();
  return {
    get size() {
      return snapshots.size;
    },
    async load(key) {
      return snapshots.get(key);
    },
    async save(key, snapshot) {
      snapshots.set(key, snapshot);
      for (const listener of listeners.get(key) ?? []) listener(snapshot);
    },
    subscribe(key, listener) {
      let set = listeners.get(key);
      if (!set) listeners.set(key, (set = new Set()));
      set.add(listener);
      return () => {
        set.delete(listener);
        if (set.size === 0) listeners.delete(key);
      };
    },
  };
}
