import { randomUUID } from 'node:crypto';
import { duration, type BreakerSnapshot, type BreakerStore, type Disposer } from '@x/resilience';
import { nonEmptyString, redisClient } from './internal/options.js';
import { isReady, withTimeout, type RedisClient } from './internal/redis.js';

/** Options of {@link redisBreakerStore}. */
export interface RedisBreakerStoreOptions {
  /** Prefix of the Redis keys and of the pub/sub channel. Default `'x:breaker'`. */
  readonly prefix?: string;
  /** How long a saved state stays in Redis after its open period ends. Default 600 000 ms. */
  readonly ttlMs?: number;
  /** Longest wait for Redis on a save, a load or a resync; then it is given up. Default 1 000 ms. */
  readonly timeoutMs?: number;
  /** The connection for SUBSCRIBE. Default `redis.duplicate()`, closed by {@link RedisBreakerStore.close}. */
  readonly subscriber?: RedisClient;
  /** Told about Redis errors (they never reach a call). Default: ignored. */
  readonly onError?: (error: Error) => void;
}

/** A {@link BreakerStore} shared through Redis; see {@link redisBreakerStore}. */
export interface RedisBreakerStore extends BreakerStore {
  /** The pub/sub channel (`<prefix>:events`). */
  readonly channel: string;
  /** True while both connections are ready. */
  readonly connected: boolean;
  /**
   * Reads the shared state of every key in use, hands peers' newer states to the breakers and
   * republishes this process's newer ones. Runs by itself on every reconnect.
   */
  resync(): Promise<void>;
  /** Unsubscribes and closes the subscriber connection it created (never `redis` itself). */
  close(): Promise<void>;
}

interface Known {
  snapshot: BreakerSnapshot;
  /** Saved by a breaker of this process (so republished on resync when newer than Redis's). */
  mine: boolean;
}

interface Message {
  readonly key: string;
  readonly snapshot: BreakerSnapshot;
  /** Id of the publishing store (a store ignores its own messages). */
  readonly origin: string;
}

function isSnapshot(value: unknown): value is BreakerSnapshot {
  const v = value as BreakerSnapshot | null;
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.state === 'string' &&
    typeof v.openUntil === 'number' &&
    typeof v.openCount === 'number' &&
    typeof v.updatedAt === 'number'
  );
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * A {@link BreakerStore} shared by every process on one Redis: a breaker's open/close is saved
 * under `<prefix>:state:<key>` (with a TTL) and published on `<prefix>:events`, so breakers with
 * the same key in other processes adopt it within milliseconds, and a new process starts from the
 * shared state. Local-first: saves are fire-and-forget with a timeout, skipped while Redis is not
 * ready (no offline queue), so a Redis outage never blocks or fails a call; the breakers keep
 * deciding on their own and the store resyncs when Redis is back.
 *
 * @example
 * const store = redisBreakerStore(new Redis(process.env.REDIS_URL!));
 * const breaker = circuitBreaker({ key: 'payments', store });
 */
export function redisBreakerStore(
  redis: RedisClient,
  options: RedisBreakerStoreOptions = {},
): RedisBreakerStore {
  redisClient(redis, 'redis');
  const prefix = nonEmptyString(options.prefix ?? 'x:breaker', 'prefix');
  const ttlMs = duration(options.ttlMs ?? 600_000, 'ttlMs', { min: 1000, allowInfinity: false });
  const timeoutMs = duration(options.timeoutMs ?? 1000, 'timeoutMs', {
    exclusiveMin: true,
    allowInfinity: false,
  });
  const onError = options.onError ?? (() => {});
  const channel = `${prefix}:events`;
  const stateKey = (key: string) => `${prefix}:state:${key}`;
  const origin = randomUUID();
  const ownSubscriber = options.subscriber === undefined;
  // Our own subscriber waits for Redis as long as it takes (SUBSCRIBE is never on a call's path).
  const subscriber = options.subscriber ?? redis.duplicate({ maxRetriesPerRequest: null });
  const listeners = new Map<string, Set<(snapshot: BreakerSnapshot) => void>>();
  const known = new Map<string, Known>();
  let closed = false;
  let resyncQueued = false;

  const report = (error: unknown) => {
    try {
      onError(asError(error));
    } catch {
      // a throwing onError must not reach a call either
    }
  };

  const deliver = (key: string, snapshot: BreakerSnapshot) => {
    for (const listener of listeners.get(key) ?? []) {
      try {
        listener(snapshot);
      } catch (error) {
        report(error);
      }
    }
  };

  /** Remembers the newest snapshot of a key; false when `snapshot` is not newer. */
  const remember = (key: string, snapshot: BreakerSnapshot, mine: boolean): boolean => {
    const previous = known.get(key);
    if (previous && previous.snapshot.updatedAt > snapshot.updatedAt) return false;
    known.set(key, { snapshot, mine });
    return true;
  };

  const pxFor = (snapshot: BreakerSnapshot) =>
    Math.round(Math.max(0, snapshot.openUntil - Date.now()) + ttlMs);

  const write = async (key: string, snapshot: BreakerSnapshot): Promise<void> => {
    if (!isReady(redis)) return; // never queue behind a reconnect: resync sends it later
    const message: Message = { key, snapshot, origin };
    await withTimeout(
      redis
        .multi()
        .set(stateKey(key), JSON.stringify(snapshot), 'PX', pxFor(snapshot))
        .publish(channel, JSON.stringify(message))
        .exec(),
      timeoutMs,
      `breaker store save of "${key}"`,
    );
  };

  const read = async (key: string): Promise<BreakerSnapshot | undefined> => {
    if (!isReady(redis)) return undefined;
    const raw = await withTimeout(
      redis.get(stateKey(key)),
      timeoutMs,
      `breaker store load of "${key}"`,
    );
    if (raw === null) return undefined;
    const parsed: unknown = JSON.parse(raw);
    return isSnapshot(parsed) ? parsed : undefined;
  };

  const onMessage = (ch: string, raw: string) => {
    if (ch !== channel) return;
    let message: Message;
    try {
      message = JSON.parse(raw) as Message;
    } catch (error) {
      report(error);
      return;
    }
    if (message.origin === origin || !isSnapshot(message.snapshot)) return;
    if (remember(message.key, message.snapshot, false)) deliver(message.key, message.snapshot);
  };
  subscriber.on('message', onMessage);

  const scheduleResync = () => {
    if (resyncQueued || closed) return;
    resyncQueued = true;
    setImmediate(() => {
      resyncQueued = false;
      if (isReady(redis) && isReady(subscriber)) store.resync().catch(report);
    });
  };
  // A connection that becomes ready (again) may have missed messages, or a load made before it
  // was ready found nothing: resync every key in use.
  const onReady = () => {
    if (listeners.size > 0 || known.size > 0) scheduleResync();
  };
  redis.on('ready', onReady);
  subscriber.on('ready', onReady);
  if (ownSubscriber) subscriber.on('error', report);
  void subscriber.subscribe(channel).catch(report);

  const store: RedisBreakerStore = {
    channel,
    get connected() {
      return isReady(redis) && isReady(subscriber);
    },

    async load(key) {
      try {
        const snapshot = await read(key);
        if (snapshot) remember(key, snapshot, false);
        return snapshot;
      } catch (error) {
        report(error);
        return undefined; // local-first: an unknown shared state is no state
      }
    },

    async save(key, snapshot) {
      remember(key, snapshot, true);
      deliver(key, snapshot); // breakers of this process sharing the store (they skip their own)
      try {
        await write(key, snapshot);
      } catch (error) {
        report(error);
      }
    },

    subscribe(key, listener) {
      const set = listeners.get(key) ?? new Set();
      listeners.set(key, set);
      set.add(listener);
      // Start from the shared state: a circuit open elsewhere is adopted without a hydrate().
      if (!known.has(key)) {
        void store.load(key).then(snapshot => {
          if (
            snapshot &&
            snapshot.state === 'open' &&
            snapshot.openUntil > Date.now() &&
            set.has(listener)
          )
            listener(snapshot);
        });
      }
      return (() => {
        set.delete(listener);
        if (set.size > 0) return;
        listeners.delete(key);
        known.delete(key); // no breaker left here: nothing to resync for this key
      }) satisfies Disposer;
    },

    async resync() {
      const keys = new Set([...listeners.keys(), ...known.keys()]);
      await Promise.all(
        [...keys].map(async key => {
          try {
            const shared = await read(key);
            const local = known.get(key);
            if (local?.mine && (!shared || shared.updatedAt < local.snapshot.updatedAt)) {
              const expired =
                local.snapshot.state === 'open' && local.snapshot.openUntil <= Date.now();
              if (!expired) await write(key, local.snapshot);
            } else if (shared && remember(key, shared, false)) {
              if (!local || shared.updatedAt > local.snapshot.updatedAt) deliver(key, shared);
            }
          } catch (error) {
            report(error);
          }
        }),
      );
    },

    async close() {
      if (closed) return;
      closed = true;
      redis.off('ready', onReady);
      subscriber.off('message', onMessage);
      subscriber.off('ready', onReady);
      listeners.clear();
      if (!ownSubscriber) {
        await subscriber.unsubscribe(channel).catch(report);
        return;
      }
      subscriber.disconnect();
    },
  };
  return store;
}
