import { repeat, type Clock } from '@x/resilience';
import type { EventStore, StoredEvent } from '../eventStore.js';

/** Events taken over per sweep (the next sweep takes the rest). */
const BATCH = 100;

/** Options of {@link startEventTakeover}. */
export interface EventTakeoverOptions {
  readonly clock: Clock;
  /** Epoch ms. */
  readonly now: () => number;
  readonly store: EventStore;
  /** An event still pending this long after its eta is taken over. */
  readonly takeoverMs: number;
  /** Schedules events found overdue (the scheduler skips the ones it already has); every sweep. */
  readonly adopt: (events: readonly StoredEvent[]) => void;
  readonly onError: (error: unknown) => void;
}

/**
 * Failover of durable events between dispatchers sharing a store: every `takeoverMs / 3` (at
 * most 1 s) asks the store for events still pending `takeoverMs` after their eta (their
 * dispatcher died, or is stuck) and schedules them here. Running one still needs the store's
 * atomic claim, so when several live dispatchers adopt the same event exactly one runs it. A
 * store without `overdue` (or not durable) has no failover: returns a no-op stop.
 */
export function startEventTakeover(options: EventTakeoverOptions): { stop: () => void } {
  const { store, clock, now, takeoverMs, adopt, onError } = options;
  if (!store.durable || typeof store.overdue !== 'function') return { stop: () => {} };
  const intervalMs = Math.max(50, Math.min(1_000, Math.floor(takeoverMs / 3)));
  return repeat(
    clock,
    intervalMs,
    async () => {
      const at = now();
      adopt(await store.overdue!(at - takeoverMs, at, BATCH));
    },
    onError,
  );
}
