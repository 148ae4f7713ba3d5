import { leastLoaded, systemClock, type Balancer, type TraceSpan } from '@x/resilience';
import { CachedClock } from './internal/cachedClock.js';
import type { BroadcastMode, BroadcastResult } from './broadcastResult.js';
import type { RestCallOptions } from './restCallOptions.js';
import { InvalidCallError, NoHostError } from './errors.js';
import type { HostStats, Upstream } from './hostStats.js';
import { buildSpec, type SpecDefaults } from './internal/buildSpec.js';
import { resolveConfig } from './internal/config.js';
import { Engine, Mode, type Picker, type StreamResponse } from './internal/engine.js';
import { EngineClient } from './internal/engineClient.js';
import type { HostPool } from './internal/hostPool.js';
import type { RestQuery } from './internal/path.js';
import { resolveHealth, type HealthOptions } from './passiveHealth.js';
import type { PendingRequest } from './pendingRequest.js';
import { toOrigin } from './toOrigin.js';
import type { ResourceOptions } from './resourceOptions.js';
import type { Response } from './response.js';

export type { PendingRequest };

/** Options of {@link Resources} (and `Shards`, `Replicas`). */
export interface ResourcesOptions extends ResourceOptions {
  /** Most requests on the wire at once across every host (a `@x/resilience` bulkhead). Default: unlimited. */
  readonly maxConnectionsTotal?: number;
  /** Chooses hosts. Default `balancers.leastLoaded()` (power of two choices, error-aware). */
  readonly balancer?: Balancer<Upstream>;
  /** Passive health checking (ejection and readmission), or false. Default: see {@link HealthOptions}. */
  readonly health?: HealthOptions | false;
  /**
   * lupyne's extension point as an option: the priority of a host (lower is better, `null`
   * eliminates it). Same as overriding the `priority` method. `host` is in the form you configured
   * (`'127.0.0.1:8080'` stays `'127.0.0.1:8080'`, `'http://...'` stays a URL), as in lupyne.
   */
  readonly priority?: (host: string, stats: HostStats) => number | null;
}

/** Options of {@link Resources.unicast} and the verb methods. */
export interface UnicastOptions extends RestCallOptions {
  /** Choose among these hosts only (lupyne's `hosts=`). Default: every host. */
  readonly hosts?: Iterable<string>;
}

/** Options of {@link Resources.broadcast}. */
export interface BroadcastOptions extends RestCallOptions {
  /** Send to these hosts only. Default: every host. */
  readonly hosts?: Iterable<string>;
  /** When the broadcast is decided. Default `'all'`. */
  readonly mode?: BroadcastMode;
}

/**
 * JSON clients for many hosts (lupyne's `Resources`): one undici `Pool` per host, a balancer,
 * retries to other hosts, passive health, hedging, broadcasts, O(1) stats and events.
 *
 * - `unicast` sends to one host chosen by `choice`; an idempotent request (or one with an
 *   idempotency key) that fails is retried on a different host, within a retry budget.
 * - `broadcast` sends to every host at once and resolves according to its mode.
 * - `priority(host)` is lupyne's extension point: override it (or pass `priority`) to steer the
 *   choice: the hosts with the lowest value form the tier the balancer picks from; `null`
 *   eliminates a host.
 */
export class Resources extends EngineClient {
  /** @internal */
  protected readonly engine: Engine;
  /** @internal */
  protected readonly defaults: SpecDefaults;
  private readonly pickAny: Picker;
  private readonly priorityOption: ResourcesOptions['priority'];
  /** Origin → the host as configured (lupyne's `host[:port]` keys), for the priority/choice hooks. */
  private readonly configured = new Map<string, string>();

  constructor(hosts: Iterable<string>, options: ResourcesOptions = {}) {
    super();
    checkHosts(hosts);
    const clock = new CachedClock(options.clock ?? systemClock);
    const balancer = (options.balancer ??
      leastLoaded<Upstream>({
        clock,
        ...(options.random ? { random: options.random } : {}),
      })) as unknown as Balancer<HostPool>;
    this.engine = new Engine(
      resolveConfig(options, balancer, resolveHealth(options.health, this.healthDefaults()), clock),
    );
    for (const host of hosts) this.addConfigured(host);
    const config = this.engine.config;
    this.defaults = {
      headers: config.compress
        ? { 'accept-encoding': 'gzip, deflate, br', ...config.headers }
        : config.headers,
      decode: config.decode,
      totalMs: config.totalMs,
      perTryMs: config.perTryMs,
      hedge: config.hedge !== undefined,
    };
    this.priorityOption = options.priority;
    if (options.priority !== undefined || this.priority !== Resources.prototype.priority) {
      this.engine.priorityFn = origin => this.priority(this.configuredForm(origin));
    }
    const engine = this.engine;
    this.pickAny =
      this.choice !== Resources.prototype.choice
        ? this.choicePicker(() => engine.hosts) // lupyne: unicast = self.choice(hosts)
        : tried => engine.choose(engine.hosts, tried);
  }

  /**
   * A subclass overriding `choice` steers `unicast` and the verbs as in lupyne: each attempt asks
   * `choice` among the candidates not tried yet (configured host forms); throwing `NO_HOST` (or
   * naming an unknown host) ends the call with `NO_HOST`.
   */
  private choicePicker(candidates: () => readonly HostPool[]): Picker {
    return tried => {
      const left = candidates().filter(h => !tried?.includes(h));
      if (left.length === 0) return undefined;
      let chosen: string;
      try {
        chosen = this.choice(left.map(h => this.configuredForm(h.origin)));
      } catch (error) {
        if (error instanceof NoHostError) return undefined;
        throw error;
      }
      return this.poolOf(chosen);
    };
  }

  private addConfigured(host: string): void {
    const origin = toOrigin(host);
    if (!this.configured.has(origin)) this.configured.set(origin, host);
    this.engine.addHost(origin);
  }

  /** The host as it was configured (`host:port` or a URL), for an origin. */
  private configuredForm(origin: string): string {
    return this.configured.get(origin) ?? origin;
  }

  /** Health defaults of this class (`Replicas` overrides them). @internal */
  protected healthDefaults(): Partial<HealthOptions> {
    return {};
  }

  /** The hosts' origins, in order. */
  get hosts(): readonly string[] {
    return this.engine.hosts.map(h => h.origin);
  }

  /** Number of hosts. */
  get size(): number {
    return this.engine.hosts.length;
  }

  /** True when `host` is one of the hosts. */
  has(host: string): boolean {
    return this.engine.byOrigin.has(safeOrigin(host) ?? '');
  }

  /** Adds a host (no-op when present). */
  add(host: string): void {
    this.addConfigured(host);
  }

  /** Removes a host and closes its connections once its requests finish; false when unknown. */
  remove(host: string): Promise<boolean> {
    const origin = this.poolOf(host)?.origin;
    if (origin === undefined) return Promise.resolve(false);
    this.configured.delete(origin);
    return this.engine.removeHost(origin);
  }

  /**
   * Moves a host to a new address (an instance restarted on another port): the host keeps its
   * health state (ejection count, failures), stats, balancer load and place in `hosts`; new
   * requests go to `newHost` at once. The failure streak was the old address's: it restarts, and
   * an ejected host's ejection ends (the next request, or the active probe, probes the new
   * address; a failed probe ejects it again, for longer). The old address's connections close
   * once their requests settle (the returned promise). Resolves false when `oldHost` is unknown; rejects with
   * `INVALID_REQUEST` when `newHost` is already another host.
   */
  replace(oldHost: string, newHost: string): Promise<boolean> {
    try {
      const pool = this.poolOf(oldHost);
      if (pool === undefined) return Promise.resolve(false);
      const from = pool.origin;
      const to = toOrigin(newHost);
      const closed = this.engine.replaceHost(from, to)!;
      this.configured.delete(from);
      this.configured.set(to, newHost);
      return closed.then(() => true);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Makes `hosts` the host list: adds the new ones and removes the others (their connections
   * close once their requests settle); hosts in both keep their state. Resolves once the removed
   * hosts' pools are closed. Use {@link replace} for a host whose address changed.
   */
  async setHosts(hosts: Iterable<string>): Promise<void> {
    const list = [...checkHosts(hosts)];
    const keep = new Set(list.map(host => toOrigin(host)));
    for (const host of list) this.addConfigured(host);
    await Promise.all(this.hosts.filter(origin => !keep.has(origin)).map(o => this.remove(o)));
  }

  /**
   * The priority of a host, lower is better, `null` eliminates it (lupyne). `host` may be given as
   * configured (`host:port`) or as an origin; overrides and the `priority` option receive the
   * configured form. Default: null while the host is ejected, else its load: requests in flight
   * plus 5 per consecutive failure (up to 10). `Shards` adds these up to weigh covers.
   */
  /**
   * The pool of `host` in either form: an origin is looked up as it is (what `Shards` passes on
   * every cover, so no URL is parsed per host there), anything else normalised first.
   */
  private poolOf(host: unknown) {
    return (
      (typeof host === 'string' ? this.engine.byOrigin.get(host) : undefined) ??
      this.engine.byOrigin.get(safeOrigin(host) ?? '')
    );
  }

  priority(host: string): number | null {
    const pool = this.poolOf(host);
    if (pool === undefined) return null;
    if (this.priorityOption !== undefined)
      return this.priorityOption(this.configuredForm(pool.origin), this.engine.stats(pool));
    return this.engine.defaultPriority(pool);
  }

  /**
   * The host a request would go to now (lupyne's `choice`), in the form it was configured;
   * `hosts` may use either form. Throws `NO_HOST` when none is eligible. Overriding it in a
   * subclass steers `unicast` and the verb methods, as in lupyne.
   */
  choice(hosts?: Iterable<string>): string {
    const candidates = hosts === undefined ? this.engine.hosts : this.resolve(hosts);
    const host = this.engine.choose(candidates, undefined);
    if (host === undefined) throw new NoHostError(`no eligible host among ${candidates.length}`);
    return this.configuredForm(host.origin);
  }

  /** Sends to one host chosen by {@link choice} and returns the Response, whatever its status. */
  unicast<T = unknown>(
    method: string,
    path: string,
    options?: UnicastOptions,
  ): Promise<Response<T>> {
    return this.run(method, path, options, undefined, undefined, false, Mode.Response) as Promise<
      Response<T>
    >;
  }

  /** GET on one host: the decoded body, or throws `HttpStatusError`. */
  get<T = unknown>(path: string, query?: RestQuery, options?: UnicastOptions): Promise<T> {
    return this.run('GET', path, options, query, undefined, false, Mode.Value) as Promise<T>;
  }

  /** DELETE on one host: the decoded body, or throws `HttpStatusError`. */
  delete<T = unknown>(path: string, query?: RestQuery, options?: UnicastOptions): Promise<T> {
    return this.run('DELETE', path, options, query, undefined, false, Mode.Value) as Promise<T>;
  }

  /** POST JSON to one host: the decoded body, or throws `HttpStatusError`. Retried elsewhere only with an idempotency key. */
  post<T = unknown>(path: string, json?: unknown, options?: UnicastOptions): Promise<T> {
    return this.run('POST', path, options, undefined, json, true, Mode.Value) as Promise<T>;
  }

  /** PUT JSON to one host: the decoded body, or throws `HttpStatusError`. */
  put<T = unknown>(path: string, json?: unknown, options?: UnicastOptions): Promise<T> {
    return this.run('PUT', path, options, undefined, json, true, Mode.Value) as Promise<T>;
  }

  /** PATCH JSON to one host: the decoded body, or throws `HttpStatusError`. */
  patch<T = unknown>(path: string, json?: unknown, options?: UnicastOptions): Promise<T> {
    return this.run('PATCH', path, options, undefined, json, true, Mode.Value) as Promise<T>;
  }

  /**
   * Sends to every host (or `hosts`) at once. Resolves with a {@link BroadcastResult} when the
   * mode is satisfied, else rejects with `BroadcastError` carrying the same result. Non-2xx
   * responses are results, not failures (lupyne); transport failures are per host.
   */
  broadcast<T = unknown>(
    method: string,
    path: string,
    options?: BroadcastOptions,
  ): Promise<BroadcastResult<T>> {
    return this.broadcastTraced<T>(method, path, options, undefined, undefined);
  }

  /**
   * {@link broadcast} under a caller's span (`Shards.multicast`), its tries' spans naming the
   * shard keys asked. @internal
   */
  broadcastTraced<T = unknown>(
    method: string,
    path: string,
    options: BroadcastOptions | undefined,
    parent: TraceSpan | undefined,
    shardKeys: readonly unknown[] | undefined,
  ): Promise<BroadcastResult<T>> {
    let spec;
    let hosts: readonly HostPool[];
    try {
      spec = buildSpec(this.defaults, method, path, options);
      if (parent !== undefined) spec.trace = parent;
      if (shardKeys !== undefined) spec.shardKeys = shardKeys;
      hosts =
        options?.hosts === undefined ? this.engine.hosts.slice() : this.resolve(options.hosts);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.engine.broadcast(spec, hosts, options?.mode ?? 'all') as Promise<
      BroadcastResult<T>
    >;
  }

  /**
   * lupyne's low-level `request`: sends at once to the given host (no balancing, no retries; a
   * stale connection is still replayed) and returns a handle to collect with {@link getresponse}.
   */
  request<T = unknown>(
    host: string,
    method: string,
    path: string,
    options?: RestCallOptions,
  ): PendingRequest<T> {
    const origin = safeOrigin(host) ?? String(host);
    let response: Promise<Response<T>>;
    try {
      const pool = this.engine.byOrigin.get(origin);
      if (pool === undefined) throw new InvalidCallError(`unknown host ${JSON.stringify(host)}`);
      const spec = buildSpec(this.defaults, method, path, options);
      const single: Picker = () => pool;
      response = this.engine.perform(
        { ...spec, retry: false, hedge: false },
        single,
        Mode.Response,
      ) as Promise<Response<T>>;
    } catch (error) {
      response = Promise.reject(error);
    }
    response.catch(() => {}); // collected (and rethrown) by getresponse; never an unhandled rejection
    return { host: origin, method: String(method), path: String(path), response };
  }

  /** lupyne's `getresponse`: the Response of a {@link request}. */
  getresponse<T = unknown>(pending: PendingRequest<T>): Promise<Response<T>> {
    return pending.response;
  }

  /** The streaming escape hatch on a given host (see `Resource.stream`). */
  stream(
    host: string,
    method: string,
    path: string,
    options?: RestCallOptions,
  ): Promise<StreamResponse> {
    try {
      const pool = this.poolOf(host);
      if (pool === undefined) throw new InvalidCallError(`unknown host ${JSON.stringify(host)}`);
      return this.engine.stream(pool, buildSpec(this.defaults, method, path, options));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** O(1) counters of every host, by origin. */
  stats(): Map<string, HostStats> {
    const out = new Map<string, HostStats>();
    for (const host of this.engine.hosts) out.set(host.origin, this.engine.stats(host));
    return out;
  }

  /** O(1) counters of one host, or undefined when unknown. */
  hostStats(host: string): HostStats | undefined {
    const pool = this.poolOf(host);
    return pool === undefined ? undefined : this.engine.stats(pool);
  }

  /** @internal */
  protected resolve(hosts: Iterable<string>): HostPool[] {
    if (
      hosts === null ||
      typeof hosts !== 'object' ||
      typeof (hosts as Iterable<string>)[Symbol.iterator] !== 'function'
    ) {
      throw new InvalidCallError('hosts must be an iterable of host strings');
    }
    const out: HostPool[] = [];
    for (const host of hosts) {
      const pool = this.poolOf(host);
      if (pool === undefined) throw new InvalidCallError(`unknown host ${JSON.stringify(host)}`);
      if (!out.includes(pool)) out.push(pool);
    }
    return out;
  }

  /** @internal */
  protected run(
    method: string,
    path: string,
    options: UnicastOptions | undefined,
    query: RestQuery | undefined,
    json: unknown,
    hasJson: boolean,
    mode: Mode,
    pick?: Picker,
  ): Promise<unknown> {
    let spec;
    let picker = pick ?? this.pickAny;
    try {
      spec = buildSpec(this.defaults, method, path, options, query, json, hasJson);
      if (options?.hosts !== undefined && pick === undefined) {
        const candidates = this.resolve(options.hosts);
        const engine = this.engine;
        picker =
          this.choice !== Resources.prototype.choice
            ? this.choicePicker(() => candidates)
            : tried => engine.choose(candidates, tried);
      }
    } catch (error) {
      return Promise.reject(error);
    }
    return this.engine.perform(spec, picker, mode);
  }
}

function safeOrigin(host: unknown): string | undefined {
  if (typeof host !== 'string') return undefined;
  try {
    return toOrigin(host);
  } catch {
    return undefined;
  }
}

function checkHosts(hosts: Iterable<string>): Iterable<string> {
  if (
    hosts === null ||
    typeof (hosts as Iterable<string> | undefined)?.[Symbol.iterator] !== 'function' ||
    typeof hosts === 'string'
  ) {
    throw new TypeError('hosts must be an iterable of "http://host:port" or "host:port" strings');
  }
  return hosts;
}
