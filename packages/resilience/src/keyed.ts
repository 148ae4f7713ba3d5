import { systemClock, type Clock } from './clock.js';
import { Emitter, type Disposer } from './emitter.js';
import type { Policy, PolicyContext, PolicyEvent, Task } from './policy.js';
import { executeRoot } from './internal/policyBase.js';

/** Options of {@link keyed}. */
export interface KeyedOptions {
  /** Most keys kept; the least recently used is evicted beyond. Default 1000. */
  readonly maxKeys?: number;
  /** A key unused this long is evicted. Default 600 000 ms (10 min). */
  readonly idleTtlMs?: number;
  readonly clock?: Clock;
}

interface Entry<P> {
  policy: P;
  lastUsed: number;
  unlisten: Disposer | undefined;
}

/**
 * One policy per key (per host, per route, per tenant), created on first use by `factory(key)`
 * and evicted when idle or beyond `maxKeys`. Events of every key's policy are merged.
 */
export class KeyedPolicy<P extends Policy> implements Policy {
  private readonly entries = new Map<string, Entry<P>>();
  private readonly maxKeys: number;
  private readonly idleTtlMs: number;
  private readonly clock: Clock;
  private readonly events = new Emitter<PolicyEvent>();
  private lastSweep: number;
  /** The entry of the last key looked up: most callers use one key (one host) over and over. */
  private lastKey: string | undefined = undefined;
  private lastEntry: Entry<P> | undefined = undefined;

  constructor(
    private readonly keyOf: (context: PolicyContext) => string,
    private readonly factory: (key: string) => P,
    options: KeyedOptions = {},
  ) {
    this.maxKeys = options.maxKeys ?? 1000;
    this.idleTtlMs = options.idleTtlMs ?? 600_000;
    if (!Number.isInteger(this.maxKeys) || this.maxKeys < 1)
      throw new RangeError(`maxKeys must be an integer >= 1, got ${this.maxKeys}`);
    if (!(this.idleTtlMs > 0)) throw new RangeError(`idleTtlMs must be > 0, got ${this.idleTtlMs}`);
    this.clock = options.clock ?? systemClock;
    this.lastSweep = this.clock.now();
  }

  /** Number of keys held. */
  get size(): number {
    return this.entries.size;
  }

  /** The policy of `key`, created if needed. */
  get(key: string, now = this.clock.now()): P {
    let entry = key === this.lastKey ? this.lastEntry : this.entries.get(key);
    if (entry) {
      entry.lastUsed = now;
      this.lastKey = key;
      this.lastEntry = entry;
      return entry.policy;
    }
    if (now - this.lastSweep > this.idleTtlMs / 4) this.sweep(now);
    if (this.entries.size >= this.maxKeys) this.evictOldest();
    const policy = this.factory(key);
    entry = { policy, lastUsed: now, unlisten: policy.onEvent(e => this.events.emit(e)) };
    this.entries.set(key, entry);
    return policy;
  }

  /** The policy of `key` if it exists. */
  peek(key: string): P | undefined {
    if (key === this.lastKey) return this.lastEntry!.policy;
    return this.entries.get(key)?.policy;
  }

  /** Every key and its policy. */
  *[Symbol.iterator](): IterableIterator<[string, P]> {
    for (const [key, entry] of this.entries) yield [key, entry.policy];
  }

  /** Drops a key. */
  delete(key: string): boolean {
    const entry = this.entries.get(key);
    if (!entry) return false;
    this.drop(key, entry);
    return true;
  }

  readonly onEvent = this.events.on;

  /** Listeners subscribed to {@link onEvent} (each key's policy forwards to them). */
  get listenerCount(): number {
    return this.events.size;
  }

  execute<T>(task: Task<T>, signal?: AbortSignal): Promise<T> {
    return executeRoot(this, task, signal, this.clock);
  }

  run<T>(task: Task<T>, context: PolicyContext): Promise<T> {
    let policy: P;
    try {
      policy = this.get(this.keyOf(context), (context as { startedAt?: number }).startedAt);
    } catch (error) {
      return Promise.reject(error); // a throwing key function or factory rejects, never throws
    }
    return policy.run(task, context);
  }

  /** Drops every key. */
  clear(): void {
    for (const [key, entry] of this.entries) this.drop(key, entry);
  }

  private sweep(now: number): void {
    this.lastSweep = now;
    for (const [key, entry] of this.entries)
      if (now - entry.lastUsed > this.idleTtlMs) this.drop(key, entry);
  }

  private evictOldest(): void {
    let oldestKey: string | undefined;
    let oldest: Entry<P> | undefined;
    for (const [key, entry] of this.entries) {
      if (!oldest || entry.lastUsed < oldest.lastUsed) {
        oldest = entry;
        oldestKey = key;
      }
    }
    if (oldest) this.drop(oldestKey!, oldest);
  }

  private drop(key: string, entry: Entry<P>): void {
    if (entry === this.lastEntry) this.lastKey = this.lastEntry = undefined;
    this.entries.delete(key);
    entry.unlisten?.();
    (entry.policy as { close?: () => void }).close?.();
  }
}

/** A {@link KeyedPolicy}: `keyed(ctx => ctx.endpoint?.netloc ?? 'default', key => circuitBreaker({ key }))`. */
export function keyed<P extends Policy>(
  keyOf: (context: PolicyContext) => string,
  factory: (key: string) => P,
  options?: KeyedOptions,
): KeyedPolicy<P> {
  return new KeyedPolicy(keyOf, factory, options);
}

/** The key function used for per-host policies: the endpoint's netloc, or `fallbackKey`. */
export function byNetloc(fallbackKey = 'default'): (context: PolicyContext) => string {
  return context => context.endpoint?.netloc ?? fallbackKey;
}
