import { systemClock, type Clock } from '@x/resilience';
import type { BroadcastMode, BroadcastResult, MulticastResult } from './broadcastResult.js';
import type { CallOptions } from './callOptions.js';
import {
  BroadcastError,
  InvalidRequestError,
  NoHostError,
  type RestClientError,
} from './errors.js';
import { setCover } from './internal/setCover.js';
import { toOrigin } from './resource.js';
import { Resources, type ResourcesOptions } from './resources.js';
import type { Response } from './response.js';

/** A shard key: what `Shards` maps to replica hosts. */
export type ShardKey = string | number;

/** Options of {@link Shards}. */
export interface ShardsOptions extends ResourcesOptions {
  /** Search nodes of the exact cover before falling back to the best cover found. Default 200 000. */
  readonly coverMaxNodes?: number;
  /** Time bound of a cover in ms (the greedy cover always completes; the exact search stops at it). Default 20. */
  readonly coverMaxMs?: number;
}

/** Options of {@link Shards.multicast}. */
export interface MulticastOptions extends CallOptions {
  /**
   * `'all'` (default): every key must be served (a 2xx or 4xx answer from its host), else reject
   * with `BROADCAST`; `'settled'`: resolve with whatever was served.
   */
  readonly mode?: 'all' | 'settled';
  /**
   * Re-cover the keys of hosts that failed (transport failure or 5xx) with other replicas, until
   * no replica is left. Default true.
   */
  readonly recover?: boolean;
}

/** A cover of keys by hosts (`Shards.cover`). */
export interface Cover<K extends ShardKey = ShardKey> {
  /** The hosts to ask, fewest first, then lowest summed priority. */
  readonly hosts: string[];
  /** Key → the host in `hosts` that serves it (its lowest-priority replica among them). */
  readonly assignment: Map<K, string>;
  /** True when proven minimal; false when the time or node bound stopped the exact search. */
  readonly exact: boolean;
}

/** The timeout of a multicast round: what is left of the call's total, keeping its per-try limit. */
function roundTimeout(
  timeout: CallOptions['timeout'],
  remainingMs: number | undefined,
): { timeout?: CallOptions['timeout'] } {
  if (remainingMs === undefined) return timeout === undefined ? {} : { timeout };
  return {
    timeout: typeof timeout === 'object' ? { ...timeout, total: remainingMs } : remainingMs,
  };
}

/** A path per host, for a multicast that asks each host only for its keys. */
export type PathFor<K> = (host: string, keys: readonly K[]) => string;

/**
 * Keys partitioned over replica hosts (lupyne's `Shards`): `key → set of hosts`, built from
 * `(host, key)` pairs or a multimap `{ host: keys }`, with one `Resources` for every host.
 *
 * `multicast(keys)` asks the smallest set of hosts covering every key (exact for small inputs,
 * greedy with a time bound beyond), weighted by load, and re-covers the keys of failed hosts with
 * other replicas. A host may answer for more keys than asked: use `assignment` to de-duplicate.
 */
export class Shards<K extends ShardKey = ShardKey> implements AsyncDisposable {
  /** The clients of every host (lupyne's `resources`). */
  readonly resources: Resources;
  private readonly map = new Map<K, string[]>();
  private readonly random: () => number;
  private readonly coverMaxNodes: number;
  private readonly coverMaxMs: number;
  private readonly clock: Clock;

  constructor(
    items:
      | Iterable<readonly [string, K]>
      | Readonly<Record<string, Iterable<K>>>
      | ReadonlyMap<string, Iterable<K>>,
    options: ShardsOptions = {},
  ) {
    const hosts: string[] = [];
    const addPair = (host: string, key: K) => {
      if (typeof key !== 'string' && typeof key !== 'number')
        throw new TypeError(`shard keys must be strings or numbers, got ${typeof key}`);
      const origin = toOrigin(host);
      if (!hosts.includes(origin)) hosts.push(origin);
      const replicas = this.map.get(key);
      if (replicas === undefined) this.map.set(key, [origin]);
      else if (!replicas.includes(origin)) replicas.push(origin);
    };
    if (items instanceof Map) {
      for (const [host, keys] of items) for (const key of keys) addPair(host, key);
    } else if (
      items !== null &&
      typeof items === 'object' &&
      typeof (items as Iterable<unknown>)[Symbol.iterator] === 'function'
    ) {
      for (const pair of items as Iterable<readonly [string, K]>) {
        if (!Array.isArray(pair) || pair.length !== 2)
          throw new TypeError('items must be [host, key] pairs');
        addPair(pair[0], pair[1]);
      }
    } else if (items !== null && typeof items === 'object') {
      for (const [host, keys] of Object.entries(items as Record<string, Iterable<K>>)) {
        if (
          keys === null ||
          typeof keys !== 'object' ||
          typeof (keys as Iterable<K>)[Symbol.iterator] !== 'function'
        )
          throw new TypeError(`keys of ${host} must be iterable`);
        for (const key of keys) addPair(host, key);
      }
    } else {
      throw new TypeError('Shards needs [host, key] pairs or a { host: keys } multimap');
    }
    this.resources = new Resources(hosts, options);
    this.random = options.random ?? Math.random;
    this.coverMaxNodes = options.coverMaxNodes ?? 200_000;
    this.coverMaxMs = options.coverMaxMs ?? 20;
    this.clock = options.clock ?? systemClock;
  }

  /** Every key. */
  keys(): IterableIterator<K> {
    return this.map.keys();
  }

  /** The replicas of `key` (empty when unknown). */
  hostsFor(key: K): readonly string[] {
    return this.map.get(key) ?? [];
  }

  /**
   * The combined priority of a set of hosts (lupyne): `[host count, Σ resources.priority(host)]`,
   * compared lexicographically, lower is better; null when any host is eliminated.
   */
  priority(hosts: Iterable<string>): readonly [number, number] | null {
    let count = 0;
    let sum = 0;
    for (const host of hosts) {
      const p = this.resources.priority(toOrigin(host));
      if (p === null || p === undefined) return null;
      count++;
      sum += p;
    }
    return [count, sum];
  }

  /**
   * The weight of one host in covers: `resources.priority(host)`, or, when a subclass overrides
   * {@link priority}, the sum it gives for `[host]` (lupyne's multicast chose among covers by
   * `priority`; covers here add up per-host weights, so an override steers them through this).
   */
  private hostPriority(host: string): number | null {
    if (this.priority === Shards.prototype.priority) return this.resources.priority(host);
    const p = this.priority([host]);
    return p === null || p === undefined ? null : p[1];
  }

  /** lupyne's `choice` over candidate host sets: the lowest {@link priority}, random among ties; throws `NO_HOST`. */
  choice(candidates: Iterable<Iterable<string>>): string[] {
    let best: string[] | undefined;
    let bestPriority: readonly [number, number] | undefined;
    let ties = 0;
    for (const candidate of candidates) {
      const hosts = [...candidate];
      const p = this.priority(hosts);
      if (p === null) continue;
      const cmp =
        bestPriority === undefined ? -1 : p[0] - bestPriority[0] || p[1] - bestPriority[1];
      if (cmp < 0) {
        best = hosts;
        bestPriority = p;
        ties = 1;
      } else if (cmp === 0 && this.random() * ++ties < 1) {
        best = hosts;
      }
    }
    if (best === undefined) throw new NoHostError('every candidate set has an eliminated host');
    return best;
  }

  /**
   * The minimum set of hosts covering `keys` and which host serves each key: fewest hosts, then
   * lowest summed priority, random among ties. Hosts whose priority is null are left out; a key
   * with no eligible replica throws `NO_HOST`.
   */
  cover(keys: Iterable<K>, exclude?: ReadonlySet<string>): Cover<K> {
    const unique = [...new Set(keys)];
    const hostIndex = new Map<string, number>();
    const hostList: string[] = [];
    const costs: number[] = [];
    const replicas: number[][] = [];
    for (const key of unique) {
      const hosts = this.map.get(key);
      if (hosts === undefined) throw new NoHostError(`no host serves key ${JSON.stringify(key)}`);
      const eligible: number[] = [];
      for (const host of hosts) {
        if (exclude?.has(host)) continue;
        let index = hostIndex.get(host);
        if (index === undefined) {
          const p = this.hostPriority(host);
          index = p === null || p === undefined ? -1 : hostList.length;
          hostIndex.set(host, index);
          if (index >= 0) {
            hostList.push(host);
            costs.push(p!);
          }
        }
        if (index >= 0) eligible.push(index);
      }
      if (eligible.length === 0)
        throw new NoHostError(`no eligible host for key ${JSON.stringify(key)}`);
      replicas.push(eligible);
    }
    const solution = setCover(
      { replicas, costs },
      { maxNodes: this.coverMaxNodes, maxMs: this.coverMaxMs, random: this.random },
    );
    const assignment = new Map<K, string>();
    unique.forEach((key, k) => assignment.set(key, hostList[solution.assignment[k]!]!));
    return { hosts: solution.hosts.map(i => hostList[i]!), assignment, exact: solution.exact };
  }

  /** Sends to one replica of `key` (chosen like `Resources.unicast`, retried on other replicas). */
  unicast<T = unknown>(
    key: K,
    method: string,
    path: string,
    options?: CallOptions,
  ): Promise<Response<T>> {
    const hosts = this.map.get(key);
    if (hosts === undefined)
      return Promise.reject(new NoHostError(`no host serves key ${JSON.stringify(key)}`));
    return this.resources.unicast<T>(method, path, { ...options, hosts });
  }

  /** Sends to every replica of `key` at once (see `Resources.broadcast`). */
  broadcast<T = unknown>(
    key: K,
    method: string,
    path: string,
    options?: CallOptions & { readonly mode?: BroadcastMode },
  ): Promise<BroadcastResult<T>> {
    const hosts = this.map.get(key);
    if (hosts === undefined)
      return Promise.reject(new NoHostError(`no host serves key ${JSON.stringify(key)}`));
    return this.resources.broadcast<T>(method, path, { ...options, hosts });
  }

  /**
   * Sends to a minimal set of hosts covering `keys` (see {@link cover}) and returns their
   * responses with the key → host assignment. `path` may be a function of the host and the keys
   * assigned to it. With `recover` (default), keys whose host failed are re-covered by other
   * replicas, round after round, within the call's deadline.
   */
  async multicast<T = unknown>(
    keys: Iterable<K>,
    method: string,
    path: string | PathFor<K>,
    options: MulticastOptions = {},
  ): Promise<MulticastResult<T, K>> {
    const { mode = 'all', recover = true, timeout, ...callOptions } = options;
    if (mode !== 'all' && mode !== 'settled')
      throw new InvalidRequestError(
        `multicast mode must be 'all' or 'settled', got ${JSON.stringify(mode)}`,
      );
    const wanted = [...new Set(keys)];
    const responses = new Map<string, Response<T>>();
    const failures = new Map<string, RestClientError>();
    const assignment = new Map<K, string>();
    const failed = new Set<string>();
    const asked: string[] = [];
    // With a path function a host's answer covers only the keys it was asked for.
    const askedFor = new Map<string, K[]>();
    const perKeyPath = typeof path === 'function';
    const total = typeof timeout === 'number' ? timeout : timeout?.total;
    const deadline =
      total === undefined || total === Infinity ? Infinity : this.clock.now() + total;
    let pending = wanted;
    let aborted: unknown;
    for (let round = 0; pending.length > 0; round++) {
      let plan: Cover<K>;
      try {
        plan = this.cover(pending, failed);
      } catch (error) {
        if (round === 0) throw error;
        break; // no replica left for some keys: they stay uncovered
      }
      // Hosts that already answered well serve their keys without a new request, as long as
      // their answer covers the key (always with a fixed path; with a path function only for the
      // keys that host was asked for: otherwise it is asked again, for all its keys).
      const toAsk = new Map<string, K[]>();
      for (const [key, host] of plan.assignment) {
        const answered = responses.get(host);
        const covers = !perKeyPath || askedFor.get(host)?.includes(key) === true;
        if (answered !== undefined && answered.status < 500 && covers) assignment.set(key, host);
        else {
          const list = toAsk.get(host);
          if (list) list.push(key);
          else toAsk.set(host, [key]);
        }
      }
      if (toAsk.size === 0) break;
      if (perKeyPath) {
        for (const [host, keys] of toAsk) {
          const before = responses.get(host)?.status;
          if (before !== undefined && before < 500) keys.unshift(...askedFor.get(host)!);
          askedFor.set(host, keys);
        }
      }
      const hosts = [...toAsk.keys()];
      asked.push(...hosts);
      const remainingMs =
        deadline === Infinity ? undefined : Math.max(1, deadline - this.clock.now());
      const results = await Promise.all(
        hosts.map(host => {
          const hostPath = typeof path === 'function' ? path(host, toAsk.get(host)!) : path;
          return this.resources
            .broadcast<T>(method, hostPath, {
              ...callOptions,
              ...roundTimeout(timeout, remainingMs),
              hosts: [host],
              mode: 'settled',
            })
            .then(r => ({ host, response: r.responses.get(host), failure: r.failures.get(host) }))
            .catch((error: unknown) => ({
              host,
              response: undefined,
              failure: error as RestClientError,
            }));
        }),
      );
      pending = [];
      for (const { host, response, failure } of results) {
        const keysOfHost = toAsk.get(host)!;
        if (response !== undefined) responses.set(host, response);
        if (failure !== undefined) {
          failures.set(host, failure);
          if (failure.code === 'ABORTED' || failure.code === 'CLOSED') aborted ??= failure;
        }
        if (response !== undefined && response.status < 500) {
          for (const key of keysOfHost) assignment.set(key, host);
        } else {
          failed.add(host);
          for (const key of keysOfHost) if (assignment.get(key) === host) assignment.delete(key);
          pending.push(...keysOfHost);
        }
      }
      if (
        !recover ||
        aborted !== undefined ||
        (deadline !== Infinity && this.clock.now() >= deadline)
      )
        break;
    }
    if (aborted !== undefined) throw aborted;
    const uncovered = wanted.filter(key => !assignment.has(key));
    const satisfied = mode === 'settled' || uncovered.length === 0;
    const result: MulticastResult<T, K> = {
      mode,
      hosts: asked,
      responses,
      failures,
      complete: failures.size === 0 && [...responses.values()].every(r => r.status < 500),
      satisfied,
      assignment,
      uncovered,
    };
    if (!satisfied) {
      throw new BroadcastError<T>(
        result,
        `multicast ${method} to ${asked.length} hosts: ${uncovered.length} of ${wanted.length} keys not served (${[...failures].map(([h, e]) => `${h}: ${e.code}`).join(', ') || '5xx'})`,
      );
    }
    return result;
  }

  /** O(1) counters of every host. */
  stats(): ReturnType<Resources['stats']> {
    return this.resources.stats();
  }

  close(): Promise<void> {
    return this.resources.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
