import { systemClock, type Clock, type TraceSpan } from '@x/resilience';
import { callTracer, shardKeyAttributes } from './internal/requestTracer.js';
import type { BroadcastMode, BroadcastResult, MulticastResult } from './broadcastResult.js';
import type { RestCallOptions } from './restCallOptions.js';
import { InvalidCallError, NoHostError, type RestClientError } from './errors.js';
import { BroadcastError } from './broadcastError.js';
import {
  CoverScratch,
  solveCover,
  tieRank,
  tieSeed,
  type CoverLimits,
  type CoverMode,
} from './internal/setCover.js';
import { toOrigin } from './toOrigin.js';
import { Resources, type ResourcesOptions } from './resources.js';
import type { Response } from './response.js';

export type { CoverMode };

/** A shard key: what `Shards` maps to replica hosts. */
export type ShardKey = string | number;

/** Options of {@link Shards}. */
export interface ShardsOptions extends ResourcesOptions {
  /**
   * How `cover` / `multicast` choose hosts. `'auto'` (default): the greedy cover (most keys first;
   * on ties the lowest priority, then the host holding more of the keys, then random), improved
   * by linear passes (redundant hosts dropped, two hosts replaced by one), in time linear in the
   * keys' replicas (times log hosts at most), made exact only when that is cheap (at most 16
   * candidate hosts, work bounded by the input size, no clock). `'greedy'`: the same without the
   * exact search. `'exact'`: the greedy cover, then an exact branch and bound bounded by
   * `coverMaxNodes` and `coverMaxMs` (it runs synchronously, on every call: use it when a smaller
   * fan-out is worth that CPU).
   */
  readonly cover?: CoverMode;
  /** `cover: 'exact'` only: search nodes before keeping the best cover found. Default 200 000. */
  readonly coverMaxNodes?: number;
  /** `cover: 'exact'` only: time bound of the search in ms (the greedy cover always completes). Default 20. */
  readonly coverMaxMs?: number;
}

/** Options of {@link Shards.multicast}. */
export interface MulticastOptions extends RestCallOptions {
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

/** A cover of keys by hosts (`Shards.cover`); hosts in the form they were configured. */
export interface Cover<K extends ShardKey = ShardKey> {
  /** The hosts to ask, fewest first, then lowest summed priority. */
  readonly hosts: string[];
  /** Key → the host in `hosts` that serves it (its lowest-priority replica among them). */
  readonly assignment: Map<K, string>;
  /**
   * True when proven minimal (an exact search finished, or one host covers every key); false for
   * a greedy cover, or when the time or node bound stopped the exact search.
   */
  readonly exact: boolean;
}

/** The timeout of a multicast round: what is left of the call's total, keeping its per-try limit. */
function roundTimeout(
  timeout: RestCallOptions['timeout'],
  remainingMs: number | undefined,
): { timeout?: RestCallOptions['timeout'] } {
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
 * `multicast(keys)` asks a smallest set of hosts covering every key (a greedy cover in time
 * linear in the keys' replicas, exact when that is cheap or asked for), weighted by load, and re-covers the keys of failed hosts with
 * other replicas. A host may answer for more keys than asked: use `assignment` to de-duplicate.
 *
 * Hosts are named in the form they were first configured (lupyne's `host:port` stays
 * `host:port`, a URL stays a URL; `'127.0.0.1:8080'` and `'http://127.0.0.1:8080'` are one host):
 * `hostsFor`, `cover`, `choice`, the `priority` option and `priority` overrides, and multicast
 * results. Methods taking hosts accept either form. `stats()`, events, `Response.host`, error
 * `host` fields and `broadcast(key)` results come from `resources` and name hosts by origin.
 */
export class Shards<K extends ShardKey = ShardKey> implements AsyncDisposable {
  /** The clients of every host (lupyne's `resources`). */
  readonly resources: Resources;
  private readonly map = new Map<K, string[]>();
  private readonly random: () => number;
  private readonly coverLimits: CoverLimits;
  private readonly clock: Clock;
  // The placement, indexed once: host and key numbers, key → replica hosts (CSR). Host h is
  // `hostList[h]` (its origin) and `configuredList[h]` (the first form it was configured in: what
  // the user sees); `rawIndex` (every form given) and `originIndex` find h from either form.
  private readonly hostList: string[] = [];
  private readonly configuredList: string[] = [];
  private readonly rawIndex = new Map<string, number>();
  private readonly originIndex = new Map<string, number>();
  private readonly keyList: K[] = [];
  private readonly keyIndex = new Map<K, number>();
  private replicaStart!: Int32Array;
  private replicaHosts!: Int32Array;
  /** The same pairs by host (host → key numbers, CSR): a cover of every key uses them as they are. */
  private hostKeyStart!: Int32Array;
  private hostKeyList!: Int32Array;
  /** Key → index by array position when every key is a small non-negative integer. */
  private denseIndex: Int32Array | undefined;
  // Buffers of cover(), sized by the placement and reused (a cover is synchronous): stamps mark
  // what one call has seen without clearing arrays between calls.
  private epoch = 0;
  private hostStamp!: Uint32Array;
  private excludeStamp!: Uint32Array;
  private hostLocal!: Int32Array;
  private keyStamp!: Uint32Array;
  private askedKeys!: Int32Array;
  private localHost!: Int32Array;
  private localCost!: Float64Array;
  private localRank!: Uint32Array;
  private keyStart!: Int32Array;
  private keyHosts!: Int32Array;
  private scratch!: CoverScratch;

  constructor(
    items:
      | Iterable<readonly [string, K]>
      | Readonly<Record<string, Iterable<K>>>
      | ReadonlyMap<string, Iterable<K>>,
    options: ShardsOptions = {},
  ) {
    // Linear in the placement: hosts and keys are indexed through Maps, each host string is
    // normalised once, and a key's replica list is deduplicated with `includes` while it is short
    // and a Set beyond that.
    const hostIndex = this.originIndex; // origin → index
    const rawIndex = this.rawIndex; // host as given → index
    const replicaSets = new Map<number, Set<number>>();
    const keyReplicas: number[][] = [];
    const indexOf = (host: string): number => {
      let index = rawIndex.get(host);
      if (index !== undefined) return index;
      const origin = toOrigin(host);
      index = hostIndex.get(origin);
      if (index === undefined) {
        index = this.hostList.length;
        hostIndex.set(origin, index);
        this.hostList.push(origin);
        this.configuredList.push(host);
      }
      rawIndex.set(host, index);
      return index;
    };
    const addPair = (host: string, key: K) => {
      if (typeof key !== 'string' && typeof key !== 'number')
        throw new TypeError(`shard keys must be strings or numbers, got ${typeof key}`);
      const h = indexOf(host);
      let k = this.keyIndex.get(key);
      if (k === undefined) {
        k = keyReplicas.length;
        this.keyIndex.set(key, k);
        this.keyList.push(key);
        keyReplicas.push([h]);
        return;
      }
      const replicas = keyReplicas[k]!;
      if (replicas[replicas.length - 1] === h) return;
      if (replicas.length < 16) {
        if (!replicas.includes(h)) replicas.push(h);
        return;
      }
      let set = replicaSets.get(k);
      if (set === undefined) replicaSets.set(k, (set = new Set(replicas)));
      if (!set.has(h)) {
        set.add(h);
        replicas.push(h);
      }
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
    this.index(keyReplicas);
    this.random = options.random ?? Math.random;
    const mode = options.cover ?? 'auto';
    if (mode !== 'auto' && mode !== 'greedy' && mode !== 'exact')
      throw new TypeError(`cover must be 'auto', 'greedy' or 'exact', got ${String(mode)}`);
    // Configured forms: the `priority` option receives them through Resources' own mapping
    // (Resources keys its hosts by origin; these are already one per origin).
    this.resources = new Resources(this.configuredList, options);
    this.coverLimits = {
      mode,
      maxNodes: options.coverMaxNodes ?? 200_000,
      maxMs: options.coverMaxMs ?? 20,
      random: this.random,
    };
    this.clock = options.clock ?? systemClock;
  }

  /**
   * Indexes the placement: `keyReplicas[k]` lists the host numbers of key `keyList[k]`. Builds
   * the CSR arrays, the key → hosts map, the dense key index and the cover buffers (sized by the
   * placement; a membership change indexes again, so no cover computed before it is reused).
   */
  private index(keyReplicas: readonly (readonly number[])[]): void {
    let pairs = 0;
    for (const replicas of keyReplicas) pairs += replicas.length;
    this.map.clear();
    this.replicaStart = new Int32Array(keyReplicas.length + 1);
    this.replicaHosts = new Int32Array(pairs);
    let r = 0;
    keyReplicas.forEach((replicas, k) => {
      this.replicaStart[k] = r;
      for (const h of replicas) this.replicaHosts[r++] = h;
      this.map.set(
        this.keyList[k]!,
        replicas.map(h => this.configuredList[h]!),
      );
    });
    this.replicaStart[keyReplicas.length] = r;
    const hostCount = this.hostList.length;
    const keyCount = keyReplicas.length;
    this.hostKeyStart = new Int32Array(hostCount + 1);
    this.hostKeyList = new Int32Array(pairs);
    for (let q = 0; q < pairs; q++) this.hostKeyStart[this.replicaHosts[q]! + 1]!++;
    for (let h = 0; h < hostCount; h++) this.hostKeyStart[h + 1]! += this.hostKeyStart[h]!;
    const fill = this.hostKeyStart.slice(0, hostCount);
    for (let k = 0; k < keyCount; k++)
      for (let q = this.replicaStart[k]!; q < this.replicaStart[k + 1]!; q++)
        this.hostKeyList[fill[this.replicaHosts[q]!]!++] = k;
    // Integer keys in a compact range (shard numbers) are found by array index, not hashing.
    let maxKey = -1;
    for (const key of this.keyList) {
      if (typeof key !== 'number' || !Number.isInteger(key) || key < 0) {
        maxKey = -1;
        break;
      }
      if (key > maxKey) maxKey = key;
    }
    this.denseIndex = undefined;
    if (maxKey >= 0 && maxKey < 4 * this.keyList.length + 1024) {
      const dense = new Int32Array(maxKey + 1).fill(-1);
      this.keyList.forEach((key, k) => (dense[key as number] = k));
      this.denseIndex = dense;
    }
    this.hostStamp = new Uint32Array(hostCount);
    this.excludeStamp = new Uint32Array(hostCount);
    this.hostLocal = new Int32Array(hostCount);
    this.keyStamp = new Uint32Array(keyCount);
    this.askedKeys = new Int32Array(keyCount);
    this.localHost = new Int32Array(hostCount);
    this.localCost = new Float64Array(hostCount);
    this.localRank = new Uint32Array(hostCount);
    this.keyStart = new Int32Array(keyCount + 1);
    this.keyHosts = new Int32Array(pairs);
    this.scratch = new CoverScratch(hostCount, keyCount, pairs);
  }

  /** The current placement as replica host numbers per key number. */
  private replicaLists(): number[][] {
    const out: number[][] = [];
    for (let k = 0; k < this.keyList.length; k++)
      out.push(
        Array.from(this.replicaHosts.subarray(this.replicaStart[k], this.replicaStart[k + 1])),
      );
    return out;
  }

  /**
   * Adds `host` as a replica of `keys` (new keys are created); a new host joins `resources`, a
   * known one (either form) keeps its state and gains the keys.
   */
  add(host: string, keys: Iterable<K>): void {
    if (typeof host !== 'string')
      throw new InvalidCallError(`host must be a string, got ${typeof host}`);
    const list = [...keys];
    for (const key of list)
      if (typeof key !== 'string' && typeof key !== 'number')
        throw new InvalidCallError(`shard keys must be strings or numbers, got ${typeof key}`);
    let h = this.indexOfHost(host);
    const replicas = this.replicaLists();
    if (h === undefined) {
      const origin = toOrigin(host);
      this.resources.add(host);
      h = this.hostList.length;
      this.hostList.push(origin);
      this.configuredList.push(host);
      this.originIndex.set(origin, h);
      this.rawIndex.set(host, h);
    }
    for (const key of list) {
      let k = this.keyIndex.get(key);
      if (k === undefined) {
        k = this.keyList.length;
        this.keyIndex.set(key, k);
        this.keyList.push(key);
        replicas.push([]);
      }
      if (!replicas[k]!.includes(h)) replicas[k]!.push(h);
    }
    this.index(replicas);
  }

  /**
   * Removes `host` (either form) from the placement and from `resources` (its connections close
   * once its requests settle: the returned promise). Keys left without a replica are dropped.
   * Resolves false when the host is unknown.
   */
  remove(host: string): Promise<boolean> {
    const h = this.indexOfHost(host);
    if (h === undefined) return Promise.resolve(false);
    const origin = this.hostList[h]!;
    const replicas = this.replicaLists();
    const keys = this.keyList.splice(0);
    this.keyIndex.clear();
    const kept: number[][] = [];
    keys.forEach((key, k) => {
      const left = replicas[k]!.filter(r => r !== h).map(r => (r > h ? r - 1 : r));
      if (left.length === 0) return;
      this.keyIndex.set(key, this.keyList.length);
      this.keyList.push(key);
      kept.push(left);
    });
    this.hostList.splice(h, 1);
    this.configuredList.splice(h, 1);
    this.reindexHosts();
    this.index(kept);
    return this.resources.remove(origin);
  }

  /**
   * Moves `oldHost` (either form) to a new address, keeping its keys, and in `resources` its
   * health state, stats and balancer load (see `Resources.replace`). Resolves once the old
   * address's connections are closed; false when `oldHost` is unknown. Rejects with
   * `INVALID_REQUEST` when `newHost` is already another host.
   */
  replace(oldHost: string, newHost: string): Promise<boolean> {
    try {
      const h = this.indexOfHost(oldHost);
      if (h === undefined) return Promise.resolve(false);
      const to = toOrigin(newHost);
      const other = this.originIndex.get(to);
      if (other !== undefined && other !== h)
        throw new InvalidCallError(`cannot move ${oldHost} to ${newHost}: already a host`);
      const moved = this.resources.replace(this.hostList[h]!, newHost);
      this.hostList[h] = to;
      this.configuredList[h] = newHost;
      this.reindexHosts();
      this.index(this.replicaLists());
      return moved;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Host numbers by origin and by configured form, from `hostList` and `configuredList`. */
  private reindexHosts(): void {
    this.originIndex.clear();
    this.rawIndex.clear();
    this.hostList.forEach((origin, h) => {
      this.originIndex.set(origin, h);
      this.rawIndex.set(this.configuredList[h]!, h);
    });
  }

  /** Every key. */
  keys(): IterableIterator<K> {
    return this.map.keys();
  }

  /** The index of a host given in either form, or undefined when it is not in the placement. */
  private indexOfHost(host: string): number | undefined {
    const index = this.rawIndex.get(host);
    if (index !== undefined || typeof host !== 'string') return index;
    let origin: string;
    try {
      origin = toOrigin(host);
    } catch {
      return undefined;
    }
    return this.originIndex.get(origin);
  }

  /** `host` (either form) as configured; unknown hosts as given. */
  private configuredOf(host: string): string {
    const index = this.indexOfHost(host);
    return index === undefined ? host : this.configuredList[index]!;
  }

  /** The replicas of `key` (empty when unknown), as configured. */
  hostsFor(key: K): readonly string[] {
    return this.map.get(key) ?? [];
  }

  /**
   * The combined priority of a set of hosts (lupyne): `[host count, Σ resources.priority(host)]`,
   * compared lexicographically, lower is better; null when any host is eliminated. Hosts may be
   * given as configured or as origins; `multicast`, `cover` and `choice` call it (and an override)
   * with the configured forms.
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
  private hostPriority(h: number): number | null {
    if (this.priority === Shards.prototype.priority)
      return this.resources.priority(this.hostList[h]!);
    const p = this.priority([this.configuredList[h]!]);
    return p === null || p === undefined ? null : p[1];
  }

  /**
   * lupyne's `choice` over candidate host sets: the lowest {@link priority}, random among ties;
   * throws `NO_HOST`. Hosts may be given in either form; the set chosen names them as configured.
   */
  choice(candidates: Iterable<Iterable<string>>): string[] {
    let best: string[] | undefined;
    let bestPriority: readonly [number, number] | undefined;
    let ties = 0;
    for (const candidate of candidates) {
      const hosts = Array.from(candidate, host => this.configuredOf(host));
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
   * A minimum set of hosts covering `keys` and which host serves each key: fewest hosts, then
   * lowest summed priority, random among ties. Hosts whose priority is null (and `exclude`d
   * hosts, in either form) are left out; a key with no eligible replica throws `NO_HOST`. Hosts
   * are returned as configured.
   *
   * By default (`cover: 'auto'`) this is the greedy cover (most keys first, then the lowest
   * priority, then random; see `ShardsOptions.cover`), in O(P log H) at most for the P (key,
   * replica) pairs of the keys asked and H hosts, no time budget, and an
   * exact search only when it is cheap (at most 16 candidate hosts, bounded work, no clock);
   * `cover: 'exact'` searches up to `coverMaxMs` / `coverMaxNodes`; `cover: 'greedy'` never does.
   */
  cover(keys: Iterable<K>, exclude?: Iterable<string>): Cover<K> {
    if (++this.epoch === 0xffffffff) {
      this.epoch = 1;
      this.hostStamp.fill(0);
      this.excludeStamp.fill(0);
      this.keyStamp.fill(0);
    }
    const epoch = this.epoch;
    const { hostStamp, excludeStamp, hostLocal, keyStamp, localHost, localCost, keyStart } = this;
    const { keyHosts, replicaStart, replicaHosts, configuredList, askedKeys } = this;
    let excluded = 0;
    if (exclude !== undefined) {
      for (const host of exclude) {
        const h = this.indexOfHost(host);
        if (h !== undefined && excludeStamp[h] !== epoch) {
          excludeStamp[h] = epoch;
          excluded++;
        }
      }
    }
    // The keys asked, deduplicated: `unique[i]` is key number `askedKeys[i]`.
    const unique: K[] = [];
    const dense = this.denseIndex;
    for (const key of keys) {
      const k =
        dense !== undefined && typeof key === 'number' && key >= 0 && key < dense.length
          ? dense[key]! // -1 when unknown; a fraction reads `undefined`
          : this.keyIndex.get(key);
      if (k === undefined || k < 0)
        throw new NoHostError(`no host serves key ${JSON.stringify(key)}`);
      if (keyStamp[k] === epoch) continue;
      keyStamp[k] = epoch;
      askedKeys[unique.length] = k;
      unique.push(key);
    }
    const n = unique.length;
    const seed = tieSeed(this.random);
    const rank = this.localRank;
    const allHosts = this.hostList.length;
    // Every key asked and every host eligible (the usual full multicast): the placement's own
    // arrays are the problem, nothing is copied.
    let full = n === this.keyList.length && excluded === 0;
    if (full) {
      for (let h = 0; h < allHosts; h++) {
        const p = this.hostPriority(h);
        if (p === null || p === undefined) {
          full = false;
          break;
        }
        localCost[h] = p;
        rank[h] = tieRank(h, seed);
      }
    }
    if (full) {
      const solution = solveCover(
        {
          n,
          keyStart: replicaStart,
          keyHosts: replicaHosts,
          hostCount: allHosts,
          cost: localCost,
          rank,
          hostStart: this.hostKeyStart,
          hostKeys: this.hostKeyList,
        },
        this.scratch,
        this.coverLimits,
      );
      const assignment = new Map<K, string>();
      for (let i = 0; i < n; i++)
        assignment.set(unique[i]!, configuredList[solution.assignment[askedKeys[i]!]!]!);
      return {
        hosts: solution.hosts.map(h => configuredList[h]!),
        assignment,
        exact: solution.exact,
      };
    }
    // Otherwise the keys asked and their eligible replicas, renumbered from 0 (local numbers).
    let hostCount = 0;
    let pairs = 0;
    for (let i = 0; i < n; i++) {
      const k = askedKeys[i]!;
      keyStart[i] = pairs;
      for (let r = replicaStart[k]!; r < replicaStart[k + 1]!; r++) {
        const h = replicaHosts[r]!;
        if (hostStamp[h] !== epoch) {
          hostStamp[h] = epoch;
          const p = excludeStamp[h] === epoch ? null : this.hostPriority(h);
          if (p === null || p === undefined) hostLocal[h] = -1;
          else {
            hostLocal[h] = hostCount;
            localHost[hostCount] = h;
            localCost[hostCount] = p;
            rank[hostCount] = tieRank(h, seed);
            hostCount++;
          }
        }
        const local = hostLocal[h]!;
        if (local >= 0) keyHosts[pairs++] = local;
      }
      if (keyStart[i] === pairs)
        throw new NoHostError(`no eligible host for key ${JSON.stringify(unique[i])}`);
    }
    keyStart[n] = pairs;
    const solution = solveCover(
      { n, keyStart, keyHosts, hostCount, cost: localCost, rank },
      this.scratch,
      this.coverLimits,
    );
    const assignment = new Map<K, string>();
    for (let i = 0; i < n; i++)
      assignment.set(unique[i]!, configuredList[localHost[solution.assignment[i]!]!]!);
    return {
      hosts: solution.hosts.map(l => configuredList[localHost[l]!]!),
      assignment,
      exact: solution.exact,
    };
  }

  /** Sends to one replica of `key` (chosen like `Resources.unicast`, retried on other replicas). */
  unicast<T = unknown>(
    key: K,
    method: string,
    path: string,
    options?: RestCallOptions,
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
    options?: RestCallOptions & { readonly mode?: BroadcastMode },
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
   * replicas, round after round, within the call's deadline. The result (`hosts`, `responses`,
   * `failures`, `assignment`) and the path function name hosts as configured (`Response.host`
   * and an error's `host` stay origins).
   */
  async multicast<T = unknown>(
    keys: Iterable<K>,
    method: string,
    path: string | PathFor<K>,
    options: MulticastOptions = {},
  ): Promise<MulticastResult<T, K>> {
    const { mode = 'all' } = options;
    if (mode !== 'all' && mode !== 'settled')
      throw new InvalidCallError(
        `multicast mode must be 'all' or 'settled', got ${JSON.stringify(mode)}`,
      );
    const wanted = [...new Set(keys)];
    if (!callTracer.enabled)
      return this.multicastRounds<T>(wanted, method, path, options, undefined);
    // Traced: one span per multicast (its keys), each host's try a child span naming its keys.
    const span = callTracer.start(`multicast ${method}`, {
      attributes: { 'http.request.method': method, ...shardKeyAttributes(wanted) },
    });
    try {
      const result = await this.multicastRounds<T>(wanted, method, path, options, span);
      span?.setAttributes({ 'x.hosts': result.hosts.length });
      span?.end();
      return result;
    } catch (error) {
      span?.end(error);
      throw error;
    }
  }

  private async multicastRounds<T>(
    wanted: K[],
    method: string,
    path: string | PathFor<K>,
    options: MulticastOptions,
    span: TraceSpan | undefined,
  ): Promise<MulticastResult<T, K>> {
    const { mode = 'all', recover = true, timeout, ...callOptions } = options;
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
      if (round > 0) span?.event('recover', { 'x.round': round, 'x.hosts': hosts.length });
      const remainingMs =
        deadline === Infinity ? undefined : Math.max(1, deadline - this.clock.now());
      const results = await Promise.all(
        hosts.map(host => {
          const hostPath = typeof path === 'function' ? path(host, toAsk.get(host)!) : path;
          // Resources names hosts by origin; this result by the configured form. Read before
          // the request: a membership change may renumber the hosts meanwhile.
          const origin = this.hostList[this.indexOfHost(host)!]!;
          return this.resources
            .broadcastTraced<T>(
              method,
              hostPath,
              {
                ...callOptions,
                ...roundTimeout(timeout, remainingMs),
                hosts: [host],
                mode: 'settled',
              },
              span,
              span === undefined ? undefined : toAsk.get(host),
            )
            .then(r => ({
              host,
              response: r.responses.get(origin),
              failure: r.failures.get(origin),
            }))
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
