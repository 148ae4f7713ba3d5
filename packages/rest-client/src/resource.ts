import { LoadTracker, createBalancer, systemClock } from '@x/resilience';
import { CachedClock } from './internal/cachedClock.js';
import type { RestCallOptions } from './restCallOptions.js';
import type { HostStats } from './hostStats.js';
import { buildSpec, type SpecDefaults } from './internal/buildSpec.js';
import { resolveConfig } from './internal/config.js';
import { Engine, Mode, type Picker, type StreamResponse } from './internal/engine.js';
import { EngineClient } from './internal/engineClient.js';
import type { HostPool } from './internal/hostPool.js';
import type { RestQuery } from './internal/path.js';
import type { ResourceOptions } from './resourceOptions.js';
import type { PendingRequest } from './pendingRequest.js';
import { toOrigin } from './toOrigin.js';
import type { Response } from './response.js';

export type { StreamResponse } from './internal/engine.js';
export { toOrigin };

/**
 * A JSON client for one host (lupyne's `Resource`), on one undici `Pool`.
 *
 * `call()` returns a {@link Response} and never throws on status; the verb methods return the
 * decoded body or throw `HttpStatusError`. Every call has a total deadline (default 30 s), an optional
 * per-try deadline and an `AbortSignal`; idempotent requests are retried (default 2 retries, within
 * a retry budget); a request that meets a keep-alive connection the server had just closed is
 * replayed once at once (idempotent requests, or a 408).
 */
export class Resource extends EngineClient {
  /** The host's origin, e.g. `http://127.0.0.1:8080`. */
  readonly host: string;
  /** @internal */
  protected readonly engine: Engine;
  private readonly hostPool: HostPool;
  private readonly pick: Picker;
  private readonly defaults: SpecDefaults;

  /**
   * `new Resource('http://host:port', options)`, `new Resource('host:port', options)`, or
   * lupyne's `Resource(host, port)`: `new Resource('host', 8080, options)`.
   */
  constructor(host: string, options?: ResourceOptions);
  constructor(host: string, port: number, options?: ResourceOptions);
  constructor(
    host: string,
    portOrOptions?: number | ResourceOptions,
    maybeOptions?: ResourceOptions,
  ) {
    super();
    let options: ResourceOptions;
    if (typeof portOrOptions === 'number') {
      if (!(Number.isInteger(portOrOptions) && portOrOptions >= 1 && portOrOptions <= 65_535))
        throw new RangeError(`port must be an integer from 1 to 65535, got ${portOrOptions}`);
      if (typeof host !== 'string' || host.includes('/') || /:\d+$/.test(host))
        throw new TypeError(
          `with a port, host must be a bare host name or address, got ${JSON.stringify(host)}`,
        );
      host = `${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${portOrOptions}`;
      options = maybeOptions ?? {};
    } else {
      options = portOrOptions ?? {};
    }
    this.host = toOrigin(host);
    const clock = new CachedClock(options.clock ?? systemClock);
    const tracker = new LoadTracker<HostPool>({ clock });
    // One host: the "balancer" only tracks load (for stats); there is nothing to pick from.
    const balancer = createBalancer<HostPool>('single', tracker, candidates => candidates[0]);
    this.engine = new Engine(resolveConfig(options, balancer, undefined, clock));
    this.hostPool = this.engine.addHost(this.host);
    const hostPool = this.hostPool;
    // One host: a retry goes back to it (after the backoff; "not tried yet" never holds).
    this.pick = tried => (tried !== undefined && tried.length > 0 ? undefined : hostPool);
    const config = this.engine.config;
    this.defaults = {
      headers: config.headers === undefined ? undefined : config.headers,
      decode: config.decode,
      totalMs: config.totalMs,
      perTryMs: config.perTryMs,
      hedge: config.hedge !== undefined,
    };
    if (config.compress)
      this.defaults = {
        ...this.defaults,
        headers: { 'accept-encoding': 'gzip, deflate, br', ...config.headers },
      };
  }

  /** Sends a request and returns the {@link Response}, whatever its status (lupyne's `call`). */
  call<T = unknown>(method: string, path: string, options?: RestCallOptions): Promise<Response<T>> {
    return this.run(method, path, options, undefined, undefined, false, Mode.Response) as Promise<
      Response<T>
    >;
  }

  /** GET: the decoded body, or throws `HttpStatusError`. */
  get<T = unknown>(path: string, query?: RestQuery, options?: RestCallOptions): Promise<T> {
    return this.run('GET', path, options, query, undefined, false, Mode.Value) as Promise<T>;
  }

  /** DELETE: the decoded body, or throws `HttpStatusError`. */
  delete<T = unknown>(path: string, query?: RestQuery, options?: RestCallOptions): Promise<T> {
    return this.run('DELETE', path, options, query, undefined, false, Mode.Value) as Promise<T>;
  }

  /** POST a JSON body: the decoded response body, or throws `HttpStatusError`. */
  post<T = unknown>(path: string, json?: unknown, options?: RestCallOptions): Promise<T> {
    return this.run('POST', path, options, undefined, json, true, Mode.Value) as Promise<T>;
  }

  /** PUT a JSON body: the decoded response body, or throws `HttpStatusError`. */
  put<T = unknown>(path: string, json?: unknown, options?: RestCallOptions): Promise<T> {
    return this.run('PUT', path, options, undefined, json, true, Mode.Value) as Promise<T>;
  }

  /** PATCH a JSON body: the decoded response body, or throws `HttpStatusError`. */
  patch<T = unknown>(path: string, json?: unknown, options?: RestCallOptions): Promise<T> {
    return this.run('PATCH', path, options, undefined, json, true, Mode.Value) as Promise<T>;
  }

  /**
   * The streaming escape hatch: resolves once the headers arrive, with the body as a stream that
   * you must consume or `destroy()` (otherwise the connection is never reused). The deadline keeps
   * running until the body ends. No retries (a stale keep-alive connection is still replayed).
   */
  stream(method: string, path: string, options?: RestCallOptions): Promise<StreamResponse> {
    try {
      return this.engine.stream(this.hostPool, buildSpec(this.defaults, method, path, options));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * lupyne's `Resource.request`: sends at once (no retries; a stale connection is still replayed)
   * and returns a handle to collect with {@link getresponse}.
   */
  request<T = unknown>(method: string, path: string, options?: RestCallOptions): PendingRequest<T> {
    let response: Promise<Response<T>>;
    try {
      const spec = buildSpec(this.defaults, method, path, options);
      response = this.engine.perform(
        { ...spec, retry: false, hedge: false },
        this.pick,
        Mode.Response,
      ) as Promise<Response<T>>;
    } catch (error) {
      response = Promise.reject(error);
    }
    response.catch(() => {}); // collected (and rethrown) by getresponse; never an unhandled rejection
    return { host: this.host, method: String(method), path: String(path), response };
  }

  /** lupyne's `Resource.getresponse`: the Response of a {@link request}. */
  getresponse<T = unknown>(pending: PendingRequest<T>): Promise<Response<T>> {
    return pending.response;
  }

  /** O(1) counters of the host. */
  stats(): HostStats {
    return this.engine.stats(this.hostPool);
  }

  private run(
    method: string,
    path: string,
    options: RestCallOptions | undefined,
    query: RestQuery | undefined,
    json: unknown,
    hasJson: boolean,
    mode: Mode,
  ): Promise<unknown> {
    let spec;
    try {
      spec = buildSpec(this.defaults, method, path, options, query, json, hasJson);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.engine.perform(spec, this.pick, mode);
  }
}
