import { isXError, redactUrl, timeout } from '@x/resilience';
import {
  EventStoreUnavailableError,
  InvalidConfigError,
  MissingDependencyError,
} from './errors.js';
import type { EventStore, StoredEvent } from './eventStore.js';

/** The part of an ioredis client the store uses. */
export interface RedisLike {
  eval(script: string, numKeys: number, ...args: Array<string | number>): Promise<unknown>;
  quit(): Promise<unknown>;
}

/** Options of {@link redisEventStore}. */
export interface RedisEventStoreOptions {
  /** Connection URL. Default `process.env.REDIS_URL`, else `redis://127.0.0.1:6379`. */
  readonly url?: string;
  /** An existing ioredis client (then `url` is ignored and the store does not quit it). */
  readonly client?: RedisLike;
  /** Key prefix. Default `'x:dispatcher:events'`. */
  readonly prefix?: string;
  /**
   * The first operation (the dispatcher's `start()` loads the stored events) waits at most this
   * long for the connection, then fails with `EVENT_STORE_UNAVAILABLE`. Default 10 000 ms.
   */
  readonly startTimeoutMs?: number;
  /**
   * Deadline of each operation: past it, or at once while the connection is down (commands are
   * never held offline), it fails with `EVENT_STORE_UNAVAILABLE`. Default 2 000 ms.
   */
  readonly commandTimeoutMs?: number;
}

/** The ioredis client the store makes from a URL. */
interface OwnedClient extends RedisLike {
  readonly status: string;
  connect(): Promise<void>;
  disconnect(): void;
  on(event: 'error', listener: (error: Error) => void): unknown;
  once(event: 'ready', listener: () => void): unknown;
  off(event: 'ready', listener: () => void): unknown;
}

function checkMs(value: number, name: string): number {
  if (typeof value === 'number' && Number.isFinite(value) && value > 0) return value;
  throw new InvalidConfigError(`${name} must be a positive number of ms, got ${String(value)}`);
}

const PUT = `
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
return 1`;
const RESCHEDULE = `
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
  return 1
end
return 0`;
const REMOVE = `
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('HDEL', KEYS[3], ARGV[1])
  return 1
end
return 0`;
const CLAIM = `
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
  return 1
end
local lease = ARGV[4] == '1' and redis.call('ZSCORE', KEYS[2], ARGV[1])
if lease and tonumber(lease) == tonumber(ARGV[3]) then
  return 1 -- the same claim again (its first answer was lost): idempotent
end
return 0`;
const COMPLETE = `
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1`;
const REPEND_EXPIRED = `
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZADD', KEYS[1], ARGV[1], id)
end`;
const WITH_DATA = `
local out = {}
for i = 1, #ids, 2 do
  out[#out + 1] = ids[i]
  out[#out + 1] = ids[i + 1]
  out[#out + 1] = redis.call('HGET', KEYS[3], ids[i]) or ''
end
return out`;
const LOAD = `${REPEND_EXPIRED}
local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1, 'WITHSCORES')
${WITH_DATA}`;
const GET = `
local due = redis.call('ZSCORE', KEYS[1], ARGV[1])
local leased = redis.call('ZSCORE', KEYS[2], ARGV[1])
return { due or '', leased or '', redis.call('HGET', KEYS[3], ARGV[1]) or '' }`;
/** ARGV: now, limit, before. */
const OVERDUE = `${REPEND_EXPIRED}
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[3], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
${WITH_DATA}`;

/**
 * A durable event store on Redis (loads the optional peer `ioredis` on first use): pending
 * events in a sorted set by eta, running ones in a lease set, data in a hash; every operation is
 * one atomic Lua script. Events with a named handler survive restarts and are shared safely by
 * dispatchers using the same prefix (a claim lets only one of them run an event).
 */
export function redisEventStore(options: RedisEventStoreOptions = {}): EventStore {
  const prefix = options.prefix ?? 'x:dispatcher:events';
  if (typeof prefix !== 'string' || prefix === '')
    throw new InvalidConfigError('prefix must be a non-empty string');
  const keys = [`${prefix}:due`, `${prefix}:leased`, `${prefix}:data`];
  const startTimeoutMs = checkMs(options.startTimeoutMs ?? 10_000, 'startTimeoutMs');
  const commandTimeoutMs = checkMs(options.commandTimeoutMs ?? 2_000, 'commandTimeoutMs');
  const url = options.url ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const shownUrl = options.client ? 'the given client' : redactUrl(url);
  let lastError: Error | undefined;
  let client: RedisLike | undefined = options.client;
  /** The client made from `url` (also while its first connection is pending). */
  let ownClient: OwnedClient | undefined;
  let connecting: Promise<RedisLike> | undefined;
  const owned = options.client === undefined;
  let closed = false;

  const redis = (): Promise<RedisLike> => {
    if (closed) return Promise.reject(new InvalidConfigError('the Redis event store is closed'));
    if (client) return Promise.resolve(client);
    connecting ??= (async () => {
      let mod: Record<string, unknown>;
      try {
        mod = (await import('ioredis')) as unknown as Record<string, unknown>;
      } catch (error) {
        throw new MissingDependencyError('ioredis', 'redisEventStore()', { cause: error });
      }
      const Redis = (mod.Redis ?? mod.default) as new (url: string, opts: object) => OwnedClient;
      const owned = new Redis(url, {
        lazyConnect: true,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
        commandTimeout: commandTimeoutMs,
        connectTimeout: Math.min(startTimeoutMs, 5_000),
        retryStrategy: (times: number) => Math.min(100 * 2 ** Math.min(times, 5), 2_000),
      });
      owned.on('error', error => (lastError = error));
      ownClient = owned;
      // the first connection may take up to startTimeoutMs; later ones never hold a command
      await timeout(startTimeoutMs)
        .execute(
          () =>
            new Promise<void>(resolve => {
              owned.once('ready', resolve);
              owned.connect().catch(() => undefined); // retried by retryStrategy until ready
            }),
        )
        .catch((error: unknown) => {
          owned.disconnect();
          throw new EventStoreUnavailableError(
            shownUrl,
            'connect',
            `not connected within ${startTimeoutMs} ms${lastError ? ` (last error: ${lastError.message})` : ''}`,
            1_000,
            { cause: lastError ?? error },
          );
        });
      client = owned;
      return owned;
    })();
    connecting.catch(() => {
      connecting = undefined;
    });
    return connecting;
  };
  const run = async (operation: string, script: string, ...args: Array<string | number>) => {
    const connected = await redis();
    try {
      return await timeout(commandTimeoutMs).execute(() =>
        connected.eval(script, 3, ...keys, ...args),
      );
    } catch (error) {
      if (isXError(error) && !isXError(error, 'TIMEOUT')) throw error;
      if ((error as { name?: unknown } | null)?.name === 'ReplyError') throw error; // Redis answered
      const reason = isXError(error, 'TIMEOUT')
        ? `no answer within ${commandTimeoutMs} ms`
        : ((error as Error)?.message ?? String(error));
      throw new EventStoreUnavailableError(shownUrl, operation, reason, 1_000, { cause: error });
    }
  };

  return {
    durable: true,
    async put(event) {
      const data = JSON.stringify({
        service: event.service,
        eventId: event.eventId,
        handler: event.handler,
        payload: event.payload,
      });
      await run('put', PUT, event.id, event.eta, data);
    },
    async reschedule(id, eta) {
      return (await run('reschedule', RESCHEDULE, id, eta)) === 1;
    },
    async remove(id) {
      return (await run('remove', REMOVE, id)) === 1;
    },
    async claim(id, eta, leaseUntil, again = false) {
      return (await run('claim', CLAIM, id, eta, leaseUntil, again ? 1 : 0)) === 1;
    },
    async complete(id) {
      await run('complete', COMPLETE, id);
    },
    async load(now, limit) {
      return parseEvents(
        (await run('load', LOAD, Math.floor(now), Math.max(1, Math.floor(limit)))) as string[],
      );
    },
    async get(id) {
      const [due, leased, json] = (await run('get', GET, id)) as [string, string, string];
      if (json === '' || (due === '' && leased === '')) return undefined;
      const [event] = parseEvents([id, due === '' ? leased : due, json]);
      return event ? { ...event, state: due === '' ? 'running' : 'pending' } : undefined;
    },
    async overdue(before, now, limit) {
      return parseEvents(
        (await run(
          'overdue',
          OVERDUE,
          Math.floor(now),
          Math.max(1, Math.floor(limit)),
          Math.floor(before),
        )) as string[],
      );
    },
    async close() {
      closed = true;
      const current = ownClient;
      client = undefined;
      ownClient = undefined;
      if (!owned || !current) return;
      if (current.status !== 'ready') return current.disconnect(); // stops reconnecting
      await timeout(commandTimeoutMs)
        .execute(() => current.quit())
        .catch(() => current.disconnect());
    },
  };
}

/** `[id, eta, json, …]` from a script as events; lost or corrupt entries are skipped. */
function parseEvents(flat: string[]): StoredEvent[] {
  const out: StoredEvent[] = [];
  for (let i = 0; i + 2 < flat.length; i += 3) {
    const id = flat[i]!;
    const eta = Number(flat[i + 1]);
    const json = flat[i + 2]!;
    if (json === '') continue; // data lost: nothing to run
    try {
      const data = JSON.parse(json) as {
        service?: string;
        eventId?: string;
        handler: string;
        payload?: unknown;
      };
      out.push({
        id,
        eta,
        service: data.service,
        eventId: data.eventId,
        handler: data.handler,
        payload: data.payload,
      });
    } catch {
      // corrupt entry: skip it rather than fail the whole load
    }
  }
  return out;
}
