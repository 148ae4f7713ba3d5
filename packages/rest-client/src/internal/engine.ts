import {
  Bulkhead,
  DEADLINE_HEADER,
  deadlineHeaderValue,
  Emitter,
  isXError,
  sleep,
  TimerQueue,
  type Balancer,
  type Clock,
  type HedgePolicy,
  type Logger,
  type Metrics,
  type PolicyContext,
  type RetryBudget,
  type RetryPolicy,
  type Tags,
} from '@x/resilience';
import { setMaxListeners } from 'node:events';
import type { Readable } from 'node:stream';
import type { Dispatcher, Pool } from 'undici';
import type { DecodeMode } from '../callOptions.js';
import {
  AbortError,
  BroadcastError,
  ClosedError,
  InvalidRequestError,
  HttpError,
  NoHostError,
  QueueFullError,
  ResponseTooLargeError,
  RetryBudgetExhaustedError,
  isRestClientError,
  type RestClientError,
  type RestClientErrorOptions,
} from '../errors.js';
import type { RestClientEvent, RestClientEventOf, RestClientEventType } from '../events.js';
import type { HostStats } from '../hostStats.js';
import type { ResolvedHealth } from '../passiveHealth.js';
import { Response, type ResponseHeaders } from '../response.js';
import type { BroadcastMode, BroadcastResult } from '../broadcastResult.js';
import { CachedClock } from './cachedClock.js';
import { CallLink, abortReason } from './callLink.js';
import type { CallSpec } from './callSpec.js';
import { contentTypeOf, decodeText, decompress } from './decode.js';
import { toRestClientError, type FailureContext } from './errorMapping.js';
import { Exchange } from './exchange.js';
import { HostPool, type PoolSettings } from './hostPool.js';

/** Retry settings with defaults applied. */
export interface ResolvedRetry {
  readonly policy: RetryPolicy;
  readonly budget: RetryBudget | undefined;
  readonly retryOn: ((error: RestClientError, attempt: number) => boolean) | undefined;
  readonly statuses: ReadonlySet<number>;
  readonly retryOnTimeout: boolean;
}

/** Everything an engine needs, resolved by the public classes. */
export interface EngineConfig {
  readonly clock: Clock;
  /** Shared with the load trackers the client created itself (see `CachedClock`). */
  readonly cachedClock?: CachedClock;
  readonly totalMs: number;
  readonly perTryMs: number;
  readonly decode: DecodeMode;
  readonly headers: Readonly<Record<string, string>> | undefined;
  readonly compress: boolean;
  /** Send each try's remaining deadline in `DEADLINE_HEADER`. */
  readonly sendDeadline: boolean;
  readonly pool: PoolSettings;
  readonly retry: ResolvedRetry | undefined;
  readonly hedge: HedgePolicy | undefined;
  readonly health: ResolvedHealth | undefined;
  readonly maxPending: number;
  readonly maxConnectionsTotal: number;
  readonly metrics: Metrics | undefined;
  readonly logger: Logger;
  /** Picks hosts and tracks their load (start/end/load). */
  readonly balancer: Balancer<HostPool>;
}

/** Chooses the host of the next try; `tried` holds the hosts already used by this call. */
export type Picker = (tried: readonly HostPool[] | undefined) => HostPool | undefined;

/** What a call resolves to: the `Response`, or its decoded body (throwing `HttpError` when not ok). */
export const enum Mode {
  Response = 0,
  Value = 1,
}

/** A response whose body is a stream, from the streaming escape hatch. */
export interface StreamResponse {
  readonly host: string;
  readonly status: number;
  readonly reason: string;
  readonly headers: ResponseHeaders;
  /** The body: consume it (or call `destroy()`), or the connection is never reused. */
  readonly body: Readable;
  readonly ok: boolean;
}

function describeMode(mode: BroadcastMode): string {
  return typeof mode === 'object' ? `quorum(${mode.quorum})` : `'${mode}'`;
}

const NEUTRAL = new Set([
  'ABORTED',
  'CLOSED',
  'DECODE',
  'RESPONSE_TOO_LARGE',
  'INVALID_REQUEST',
  'QUEUE_FULL',
]);

function infoOf(ex: Exchange): RestClientErrorOptions {
  return ex.info();
}

interface MetricTags {
  ok: Tags;
  http: Tags;
  error: Tags;
  host: Tags;
}

/**
 * The machinery shared by `Resource`, `Resources`, `Shards` and `Replicas`: one undici `Pool` per
 * host, tries with deadlines, stale-connection replay, retries on other hosts, hedging, passive
 * health, broadcasts, stats and events.
 */
export class Engine {
  readonly clock: Clock;
  /** The clock as the balancers' load trackers see it (the value of the last {@link now}). */
  readonly cachedClock: CachedClock;
  readonly hosts: HostPool[] = [];
  readonly byOrigin = new Map<string, HostPool>();
  readonly events = new Emitter<RestClientEvent>();
  readonly deadlines: TimerQueue;
  /** Custom `priority(host)` (a subclass override or option), or undefined for the default. */
  priorityFn: ((host: string) => number | null | undefined) | undefined = undefined;
  closed = false;
  private pendingTotal = 0;
  private ejectedCount = 0;
  private readonly limiter: Bulkhead | undefined;
  private readonly closer = new AbortController();
  private closing: Promise<void> | undefined;
  private readonly failureContext: FailureContext;
  private readonly tags = new WeakMap<HostPool, MetricTags>();
  /** Pools of removed or moved hosts, closing once their requests settle. */
  private readonly retiring = new Set<Pool>();

  constructor(readonly config: EngineConfig) {
    this.clock = config.clock;
    this.cachedClock = config.cachedClock ?? new CachedClock(config.clock);
    this.deadlines = new TimerQueue(config.clock);
    // Every call sleeping in a retry backoff listens to it: not a leak, however many there are.
    setMaxListeners(0, this.closer.signal);
    this.failureContext = {
      connectTimeoutMs: config.pool.connectTimeoutMs,
      maxResponseSize: config.pool.maxResponseSize,
    };
    if (config.maxConnectionsTotal !== Infinity) {
      this.limiter = new Bulkhead({
        limit: config.maxConnectionsTotal,
        queue: config.maxPending,
        clock: config.clock,
      });
    }
  }

  /** Reads the clock (and caches the value for the load trackers). */
  now(): number {
    return this.cachedClock.read();
  }

  // ---------------------------------------------------------------- hosts

  addHost(origin: string): HostPool {
    if (this.closed) throw new ClosedError({ host: origin });
    const existing = this.byOrigin.get(origin);
    if (existing) return existing;
    const host = new HostPool(origin, this.config.pool);
    this.hosts.push(host);
    this.byOrigin.set(origin, host);
    return host;
  }

  async removeHost(origin: string): Promise<boolean> {
    const host = this.byOrigin.get(origin);
    if (!host) return false;
    this.byOrigin.delete(origin);
    this.hosts.splice(this.hosts.indexOf(host), 1);
    host.removed = true;
    if (host.state !== 'healthy') this.ejectedCount--;
    this.clearProbe(host);
    this.config.balancer.forget(host);
    await this.retire(host.pool);
    return true;
  }

  /**
   * Moves the host at `from` to the origin `to`, keeping its `HostPool` (counters, health state,
   * balancer load, ejection count): requests from now on use a new undici pool; its failure
   * streak restarts and an ejected host is probed at the new address at once; the old pool is closed once its
   * requests settle (the returned promise). Undefined when `from` is unknown. Throws (before
   * changing anything) when closed or when `to` is already another host.
   */
  replaceHost(from: string, to: string): Promise<void> | undefined {
    if (this.closed) throw new ClosedError({ host: to });
    const host = this.byOrigin.get(from);
    if (host === undefined) return undefined;
    if (from === to) return Promise.resolve();
    if (this.byOrigin.has(to))
      throw new InvalidRequestError(`cannot move ${from} to ${to}: ${to} is already a host`);
    this.byOrigin.delete(from);
    this.byOrigin.set(to, host);
    this.tags.delete(host);
    const old = host.rebind(to);
    // The failure streak (and the ejection it caused) was the old address's: the streak restarts,
    // in the balancer's load too, and the new address is probed at once (the probe readmits it,
    // or ejects it again for the next, longer ejection time). Totals and history stay.
    host.consecutiveFailures = 0;
    this.config.balancer.load(host).consecutiveFailures = 0;
    if (host.state === 'ejected') {
      host.ejectedUntil = this.now();
      if (this.config.health !== undefined && this.config.health.probe !== 'request')
        this.scheduleProbe(host, 0);
    }
    return this.retire(old);
  }

  /** Closes a pool no host uses any more once its requests settle; `close`/`destroy` wait for it. */
  private async retire(pool: Pool): Promise<void> {
    this.retiring.add(pool);
    try {
      await pool.close();
    } finally {
      this.retiring.delete(pool);
    }
  }

  stats(host: HostPool): HostStats {
    return host.snapshot(this.config.balancer.load(host).ewmaMs);
  }

  // ---------------------------------------------------------------- events

  on<K extends RestClientEventType>(
    type: K,
    listener: (event: RestClientEventOf<K>) => void,
  ): () => void {
    return this.events.on(event => {
      if (event.type === type) listener(event as RestClientEventOf<K>);
    });
  }

  private emit(event: RestClientEvent): void {
    if (this.events.active) this.events.emit(event);
  }

  // ---------------------------------------------------------------- choice

  /** True when a host may take a request now (health-wise); moves expired ejections to probing. */
  eligible(host: HostPool): boolean {
    switch (host.state) {
      case 'healthy':
        return true;
      case 'ejected':
        if (this.config.health?.probe === 'request' && this.now() >= host.ejectedUntil) {
          host.state = 'probing';
          return !host.probeInFlight;
        }
        return false;
      case 'probing':
        return !host.probeInFlight && this.config.health?.probe === 'request';
    }
  }

  /**
   * Chooses among `candidates`, skipping `tried` and ineligible hosts: the hosts with the lowest
   * `priority` when it is customised (null eliminates), then the balancer. When only ejection
   * leaves nothing, ejection is ignored (Envoy's panic routing) so a subset of hosts that are all
   * ejected still gets traffic.
   */
  choose(
    candidates: readonly HostPool[],
    tried: readonly HostPool[] | undefined,
  ): HostPool | undefined {
    let exclude: Set<HostPool> | undefined;
    if (tried !== undefined && tried.length > 0) exclude = new Set(tried);
    let withHealth = exclude;
    if (this.ejectedCount > 0) {
      for (let i = 0; i < candidates.length; i++) {
        const host = candidates[i]!;
        if (host.state !== 'healthy' && !this.eligible(host))
          (withHealth ??= new Set(exclude)).add(host);
      }
    }
    let picked = this.pickAmong(candidates, withHealth);
    if (picked === undefined && withHealth !== exclude)
      picked = this.pickAmong(candidates, exclude);
    return picked;
  }

  private pickAmong(
    candidates: readonly HostPool[],
    exclude: Set<HostPool> | undefined,
  ): HostPool | undefined {
    const priority = this.priorityFn;
    if (priority === undefined) return this.config.balancer.pick(candidates, exclude);
    let best = Infinity;
    let tier: HostPool[] = [];
    for (const host of candidates) {
      if (exclude?.has(host)) continue;
      const p = priority(host.origin);
      if (p === null || p === undefined) continue;
      if (typeof p !== 'number' || Number.isNaN(p))
        throw new TypeError(
          `priority(${host.origin}) must return a number or null, got ${String(p)}`,
        );
      if (p < best) {
        best = p;
        tier = [host];
      } else if (p === best) {
        tier.push(host);
      }
    }
    return this.config.balancer.pick(tier, exclude);
  }

  /** The default `priority(host)`: null when not eligible, else its load (in flight + 5 per consecutive failure). */
  defaultPriority(host: HostPool): number | null {
    if (
      host.state !== 'healthy' &&
      (host.state === 'ejected' ? this.now() < host.ejectedUntil : host.probeInFlight)
    )
      return null;
    return host.inFlight + 5 * Math.min(host.consecutiveFailures, 10);
  }

  // ---------------------------------------------------------------- calls

  /** Runs a call: tries, replay, retries and hedging; resolves to the Response or its value. */
  async perform(spec: CallSpec, pick: Picker, mode: Mode): Promise<unknown> {
    if (this.closed) throw new ClosedError({ method: spec.method, path: spec.path });
    const startedAt = this.now();
    spec.startedAt = startedAt;
    spec.deadline = spec.totalMs === Infinity ? Infinity : startedAt + spec.totalMs;
    const retry = spec.retry ? this.config.retry : undefined;
    retry?.budget?.deposit(startedAt);
    let link: CallLink | undefined;
    if (spec.signal !== undefined) {
      if (spec.signal.aborted) throw abortReason(spec.signal, spec);
      link = new CallLink(spec.signal, spec);
    }
    try {
      let host = pick(undefined);
      if (host === undefined)
        throw new NoHostError('no eligible host', {
          method: spec.method,
          path: spec.path,
          idempotent: spec.idempotent,
        });
      let attempts = 0;
      let replayed = false;
      let schedule: ReturnType<RetryPolicy['schedule']> | undefined;
      let tried: HostPool[] | undefined;
      for (;;) {
        attempts++;
        let response: Response | undefined;
        let failure: RestClientError | undefined;
        if (spec.hedge && this.config.hedge !== undefined) {
          try {
            response = await this.hedged(host, spec, attempts, pick, link);
          } catch (error) {
            failure = this.asFailure(error, host, spec, attempts);
            // The last try to fail may have been a hedge on another host: retry away from it.
            host = this.byOrigin.get(failure.host ?? '') ?? host;
            if (failure.code === 'HTTP_ERROR') response = (failure as HttpError).response;
          }
        } else if (this.limiter !== undefined) {
          const ex = new Exchange(spec, host.origin, attempts);
          if (link !== undefined) link.track(ex);
          try {
            response = await this.tryOnce(host, spec, ex);
          } catch (error) {
            failure = this.asFailure(error, host, spec, attempts);
          }
          if (link !== undefined) link.untrack(ex);
        } else {
          // The hot path: tryOnce inlined (one async frame less per call).
          const ex = new Exchange(spec, host.origin, attempts);
          if (link !== undefined) link.track(ex);
          const start = attempts === 1 ? startedAt : this.now();
          try {
            this.admit(host, spec, ex, start);
          } catch (error) {
            failure = error as RestClientError;
          }
          if (failure === undefined) {
            this.started(host);
            let status = 0;
            let afterHeaders = false;
            let end = 0;
            let value: unknown;
            let data: Dispatcher.ResponseData | undefined;
            try {
              data = await ex.request(host.pool, {
                method: spec.method,
                path: spec.path,
                headers: this.wireHeaders(spec, ex),
                body: spec.body,
                signal: ex,
              });
              afterHeaders = true;
              status = data.statusCode;
              value = this.plainBody(data, spec, ex)
                ? decodeText(
                    await data.body.text(),
                    contentTypeOf(data.headers['content-type']),
                    spec.decode,
                    status,
                    ex,
                  )
                : await this.readBody(data, spec, ex);
              end = this.now();
            } catch (error) {
              failure = this.tryFailure(error, ex, afterHeaders);
            } finally {
              this.deadlines.remove(ex);
              this.finish(host, start, status, failure, end);
            }
            if (link !== undefined) link.untrack(ex);
            if (failure === undefined) {
              if (mode === Mode.Value && status >= 200 && status < 300) return value;
              response = new Response(
                host.origin,
                spec.method,
                spec.path,
                status,
                data!.statusText,
                data!.headers,
                value,
                attempts,
                end - startedAt,
                spec.idempotent,
              );
            }
          } else if (link !== undefined) {
            link.untrack(ex);
          }
        }
        if (response !== undefined) {
          const status = response.status;
          if (status < 400) return mode === Mode.Response ? response : response.value();
          if (status === 408 && !replayed) {
            replayed = true;
            this.replay(host, spec, undefined, 408);
            continue;
          }
          if (retry === undefined) return mode === Mode.Response ? response : response.value();
          failure = new HttpError(response, {
            host: host.origin,
            method: spec.method,
            path: spec.path,
            idempotent: spec.idempotent,
            attempts,
          });
          if (!this.retryable(failure, retry, attempts))
            return mode === Mode.Response ? response : response.value();
        } else if (
          failure!.code === 'SOCKET' &&
          (failure as { stale?: boolean }).stale &&
          spec.idempotent &&
          !replayed
        ) {
          replayed = true;
          this.replay(host, spec, failure, undefined);
          continue;
        } else if (retry === undefined || !this.retryable(failure!, retry, attempts)) {
          throw failure;
        }
        // A retry is due (failure is set).
        const error = failure!;
        (tried ??= []).push(host);
        schedule ??= retry.policy.schedule({
          signal: spec.signal,
          attempt: 0,
          deadline: spec.deadline,
          endpoint: undefined,
        } as unknown as PolicyContext);
        let delay = schedule.next(error);
        if (delay < 0) return this.giveUp(schedule.finalError, error, response, mode, attempts);
        let next = pick(tried);
        if (next !== undefined) delay = 0;
        else next = pick(undefined);
        if (next === undefined) return this.giveUp(undefined, error, response, mode, attempts);
        host.retries++;
        this.emit({
          type: 'retry',
          host: host.origin,
          to: next.origin,
          attempt: attempts,
          delayMs: delay,
          error,
        });
        this.config.metrics?.increment('rest_client.retries', 1, this.tagsOf(host).host);
        if (delay > 0) await this.pause(delay, spec, link);
        if (this.closed)
          throw new ClosedError({
            host: next.origin,
            method: spec.method,
            path: spec.path,
            attempts,
          });
        host = next;
      }
    } finally {
      link?.dispose();
    }
  }

  /** The Response or error a call ends with when retries stop. */
  private giveUp(
    final: unknown,
    error: RestClientError,
    response: Response | undefined,
    mode: Mode,
    attempts: number,
  ): unknown {
    if (response !== undefined) return mode === Mode.Response ? response : response.value();
    if (isXError(final, 'RETRY_BUDGET_EXHAUSTED')) {
      throw new RetryBudgetExhaustedError({
        host: error.host,
        method: error.method,
        path: error.path,
        idempotent: error.idempotent,
        attempts,
        cause: error,
      });
    }
    throw error;
  }

  private retryable(error: RestClientError, retry: ResolvedRetry, attempt: number): boolean {
    if (retry.retryOn !== undefined) return retry.retryOn(error, attempt);
    switch (error.code) {
      case 'CONNECT':
        return true;
      case 'TIMEOUT': {
        const phase = (error as { phase?: string }).phase;
        return phase === 'connect' || (phase === 'try' && retry.retryOnTimeout && error.idempotent);
      }
      case 'SOCKET':
        return error.idempotent;
      case 'HTTP_ERROR':
        return error.idempotent && retry.statuses.has((error as HttpError).status);
      default:
        return false;
    }
  }

  private replay(
    host: HostPool,
    spec: CallSpec,
    error: RestClientError | undefined,
    status: number | undefined,
  ): void {
    host.replays++;
    this.emit({
      type: 'replay',
      host: host.origin,
      method: spec.method,
      path: spec.path,
      error,
      status,
    });
    this.config.metrics?.increment('rest_client.replays', 1, this.tagsOf(host).host);
  }

  private async pause(ms: number, spec: CallSpec, link: CallLink | undefined): Promise<void> {
    const signal = spec.signal
      ? AbortSignal.any([spec.signal, this.closer.signal])
      : this.closer.signal;
    try {
      await sleep(this.clock, ms, signal);
    } catch {
      if (this.closed) throw new ClosedError({ method: spec.method, path: spec.path });
      throw link?.reason ?? abortReason(spec.signal!, spec);
    }
  }

  private asFailure(
    error: unknown,
    host: HostPool,
    spec: CallSpec,
    attempts: number,
  ): RestClientError {
    if (isRestClientError(error)) return error;
    return toRestClientError(
      error,
      {
        host: host.origin,
        method: spec.method,
        path: spec.path,
        idempotent: spec.idempotent,
        attempts,
      },
      false,
      this.failureContext,
    );
  }

  /**
   * One try hedged with backup tries on other hosts (`@x/resilience` hedge): the policy decides
   * when to launch a backup; the first good answer wins and the other tries are cancelled here
   * (without reading the policy's lazily created signal, which would cost an AbortController).
   */
  private async hedged(
    first: HostPool,
    spec: CallSpec,
    attempt: number,
    pick: Picker,
    link: CallLink | undefined,
  ): Promise<Response> {
    const used: HostPool[] = [];
    const running = new Set<Exchange>();
    const retry = this.config.retry;
    try {
      return await this.config.hedge!.run(
        async context => {
          let host = first;
          if (context.attempt > 0) {
            host = pick(used) ?? first;
            this.emit({ type: 'hedge', host: host.origin, attempt: context.attempt });
            this.config.metrics?.increment('rest_client.hedges', 1, this.tagsOf(host).host);
          }
          used.push(host);
          const ex = new Exchange(spec, host.origin, attempt);
          running.add(ex);
          link?.track(ex);
          try {
            const response = await this.tryOnce(host, spec, ex);
            if (
              response.status >= 400 &&
              (response.status === 408 || retry?.statuses.has(response.status))
            ) {
              throw new HttpError(response, infoOf(ex));
            }
            return response;
          } finally {
            running.delete(ex);
            link?.untrack(ex);
          }
        },
        {
          signal: spec.signal,
          attempt: 0,
          deadline: spec.deadline,
          endpoint: undefined,
        } as unknown as PolicyContext,
      );
    } finally {
      for (const ex of running)
        ex.abort(new AbortError('another hedged try answered first', infoOf(ex)));
    }
  }

  /**
   * Admission of a try starting at `start`: its deadline (the call's, or `perTry` when earlier),
   * the closed check and the `maxPending` limit. Queues the deadline; throws before anything is
   * counted.
   */
  private admit(host: HostPool, spec: CallSpec, ex: Exchange, start: number): void {
    let at = spec.deadline;
    if (spec.perTryMs !== Infinity && start + spec.perTryMs < at) {
      at = start + spec.perTryMs;
      ex.phase = 'try';
    }
    if (at <= start) throw ex.timeoutError();
    if (this.closed || host.removed) throw new ClosedError(infoOf(ex));
    if (host.inFlight >= host.connections && this.pendingTotal >= this.config.maxPending) {
      throw new QueueFullError(this.config.maxPending, infoOf(ex));
    }
    ex.at = at;
    this.deadlines.insert(ex);
  }

  /**
   * The headers of one try: the call's, plus its remaining deadline (the try's `at`: the call's
   * deadline or the per-try one, whichever is earlier) in `DEADLINE_HEADER`, so the server stops
   * when this client stops waiting. A smaller budget set by the caller wins.
   */
  private wireHeaders(spec: CallSpec, ex: Exchange): Readonly<Record<string, string>> | undefined {
    if (!this.config.sendDeadline || ex.at === Infinity) return spec.headers;
    let remainingMs = ex.at - this.now();
    const own = spec.headers?.[DEADLINE_HEADER];
    if (own !== undefined && /^\d+$/.test(own)) remainingMs = Math.min(remainingMs, Number(own));
    return { ...spec.headers, [DEADLINE_HEADER]: deadlineHeaderValue(remainingMs) };
  }

  /** A try goes on the wire: load and probe bookkeeping. */
  private started(host: HostPool): void {
    if (host.inFlight++ >= host.connections) this.pendingTotal++;
    if (host.state === 'probing') host.probeInFlight = true;
    this.config.balancer.start(host);
  }

  /**
   * Checks the announced size (destroying an oversized body at once) and tells whether the body
   * takes the plain path: read as text, decoded by content type.
   */
  private plainBody(data: Dispatcher.ResponseData, spec: CallSpec, ex: Exchange): boolean {
    const max = this.config.pool.maxResponseSize;
    const headers = data.headers;
    if (max !== Infinity) {
      const length = headers['content-length'];
      if (length !== undefined && Number(length) > max) {
        data.body.destroy();
        throw new ResponseTooLargeError(max, infoOf(ex));
      }
    }
    const encoding = headers['content-encoding'];
    return spec.decode !== 'bytes' && (encoding === undefined || encoding === 'identity');
  }

  /** The other bodies: raw bytes, or compressed ones (decompressed under the size limit). */
  private async readBody(
    data: Dispatcher.ResponseData,
    spec: CallSpec,
    ex: Exchange,
  ): Promise<unknown> {
    const headers = data.headers;
    const encoding = headers['content-encoding'];
    const contentType = contentTypeOf(headers['content-type']);
    let bytes: Uint8Array = await data.body.bytes();
    if (encoding !== undefined && encoding !== 'identity') {
      bytes = decompress(
        bytes,
        String(encoding),
        this.config.pool.maxResponseSize,
        data.statusCode,
        contentType,
        infoOf(ex),
      );
    }
    if (spec.decode === 'bytes') return bytes;
    return decodeText(
      Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'),
      contentType,
      spec.decode,
      data.statusCode,
      ex,
    );
  }

  /** The typed error of a failed try (the abort reason when we aborted it). */
  private tryFailure(error: unknown, ex: Exchange, afterHeaders: boolean): RestClientError {
    return ex.aborted && isRestClientError(ex.reason)
      ? ex.reason
      : toRestClientError(error, infoOf(ex), afterHeaders, this.failureContext);
  }

  /**
   * One try on one host: admission (pending limit, total connections), deadline, undici request,
   * eager body read and decode, then bookkeeping (load, health, metrics). Rejects with a
   * `RestClientError`; never leaves a body unconsumed.
   */
  async tryOnce(host: HostPool, spec: CallSpec, ex: Exchange): Promise<Response> {
    // The first try of a call starts when the call did: one clock read saved.
    const start = ex.attempt === 1 && !spec.hedge ? spec.startedAt : this.now();
    this.admit(host, spec, ex, start);
    const limiter = this.limiter;
    let release: (() => void) | undefined;
    if (limiter !== undefined && !limiter.tryAcquire()) {
      try {
        release = await this.acquireSlot(limiter, ex);
      } catch (error) {
        this.deadlines.remove(ex);
        throw error;
      }
    }
    this.started(host);
    let status = 0;
    let failure: RestClientError | undefined;
    let afterHeaders = false;
    let end = 0;
    try {
      const data = await ex.request(host.pool, {
        method: spec.method,
        path: spec.path,
        headers: this.wireHeaders(spec, ex),
        body: spec.body,
        signal: ex,
      });
      afterHeaders = true;
      status = data.statusCode;
      const value = this.plainBody(data, spec, ex)
        ? decodeText(
            await data.body.text(),
            contentTypeOf(data.headers['content-type']),
            spec.decode,
            status,
            ex,
          )
        : await this.readBody(data, spec, ex);
      end = this.now();
      return new Response(
        host.origin,
        spec.method,
        spec.path,
        status,
        data.statusText,
        data.headers,
        value,
        ex.attempt,
        end - spec.startedAt,
        spec.idempotent,
      );
    } catch (error) {
      throw (failure = this.tryFailure(error, ex, afterHeaders));
    } finally {
      this.deadlines.remove(ex);
      if (release !== undefined) release();
      else limiter?.release();
      this.finish(host, start, status, failure, end);
    }
  }

  /** Bookkeeping at the end of a try (`end`: the clock time it ended, when already read). */
  private finish(
    host: HostPool,
    start: number,
    status: number,
    failure: RestClientError | undefined,
    end = 0,
  ): void {
    if (host.inFlight-- > host.connections) this.pendingTotal--;
    const now = end === 0 ? this.now() : end;
    const durationMs = now - start;
    const health = this.config.health;
    let ok: boolean;
    let neutral = false;
    if (failure === undefined) {
      ok = status < 500 || (health !== undefined && !health.on5xx);
      if (status >= 500) host.status5xx++;
    } else {
      // A try to an address the host has since moved from says nothing about the new one.
      neutral =
        NEUTRAL.has(failure.code) || (failure.host !== undefined && failure.host !== host.origin);
      ok = neutral;
      host.lastError = failure;
    }
    host.requests++;
    this.config.balancer.end(host, { ok, durationMs: durationMs >= 0 ? durationMs : 0 });
    if (!neutral) {
      if (ok) {
        host.consecutiveFailures = 0;
      } else {
        host.failures++;
        host.consecutiveFailures++;
      }
      if (health !== undefined) this.recordHealth(host, ok, failure, now);
    } else if (host.state === 'probing' && host.probeInFlight && health?.probe === 'request') {
      host.probeInFlight = false; // the probe said nothing: let the next request probe
    }
    const metrics = this.config.metrics;
    if (metrics !== undefined) {
      const tags = this.tagsOf(host);
      metrics.increment(
        'rest_client.requests',
        1,
        failure ? tags.error : status >= 500 ? tags.http : tags.ok,
      );
      metrics.histogram('rest_client.request.duration', durationMs, tags.host);
    }
  }

  private tagsOf(host: HostPool): MetricTags {
    let tags = this.tags.get(host);
    if (!tags) {
      tags = {
        ok: { host: host.origin, outcome: 'ok' },
        http: { host: host.origin, outcome: '5xx' },
        error: { host: host.origin, outcome: 'error' },
        host: { host: host.origin },
      };
      this.tags.set(host, tags);
    }
    return tags;
  }

  /** Waits for a slot of `maxConnectionsTotal` (the `@x/resilience` bulkhead), honouring the try's abort. */
  private acquireSlot(limiter: Bulkhead, ex: Exchange): Promise<() => void> {
    const controller = new AbortController();
    const onAbort = () => controller.abort(ex.reason);
    ex.once('abort', onAbort);
    return new Promise<() => void>((resolve, reject) => {
      limiter
        .run(() => new Promise<void>(release => resolve(release)), {
          signal: controller.signal,
          attempt: 0,
          deadline: Infinity,
          endpoint: undefined,
        })
        .catch((error: unknown) => {
          if (isXError(error, 'BULKHEAD_FULL'))
            reject(new QueueFullError(this.config.maxPending, infoOf(ex)));
          else reject(ex.aborted ? ex.reason : error);
        });
    }).finally(() => ex.removeListener('abort', onAbort));
  }

  // ---------------------------------------------------------------- health

  private recordHealth(
    host: HostPool,
    ok: boolean,
    failure: RestClientError | undefined,
    now: number,
  ): void {
    const health = this.config.health!;
    if (ok) {
      if (host.state === 'probing' && health.probe === 'request')
        this.readmit(host, 'request', now);
      else if (
        host.ejections > 0 &&
        host.state === 'healthy' &&
        now - host.readmittedAt >= health.maxEjectionMs
      )
        host.ejections = 0;
      return;
    }
    if (host.state === 'probing') {
      if (health.probe === 'request') {
        this.emit({ type: 'probeFailed', host: host.origin, error: failure });
        this.eject(host, failure, now);
      }
      return;
    }
    if (
      host.state === 'healthy' &&
      host.consecutiveFailures >= health.consecutiveFailures &&
      this.canEject()
    ) {
      this.eject(host, failure, now);
    }
  }

  private canEject(): boolean {
    const n = this.hosts.length;
    const percent = this.config.health!.maxEjectedPercent;
    const cap = Math.min(n - 1, Math.max(percent > 0 ? 1 : 0, Math.floor((n * percent) / 100)));
    return this.ejectedCount < cap;
  }

  private eject(host: HostPool, error: RestClientError | undefined, now: number): void {
    const health = this.config.health!;
    if (host.state === 'healthy') this.ejectedCount++;
    if (
      host.ejections > 0 &&
      now - host.readmittedAt >= health.maxEjectionMs &&
      host.state === 'healthy'
    )
      host.ejections = 0;
    host.ejections++;
    const ejectionMs = Math.min(
      health.maxEjectionMs,
      health.baseEjectionMs * 2 ** Math.min(host.ejections - 1, 30),
    );
    host.state = 'ejected';
    host.probeInFlight = false;
    host.ejectedAt = now;
    host.ejectedUntil = now + ejectionMs;
    this.emit({
      type: 'eject',
      host: host.origin,
      consecutiveFailures: host.consecutiveFailures,
      ejectionMs,
      ejections: host.ejections,
      error,
    });
    this.config.metrics?.increment('rest_client.ejections', 1, this.tagsOf(host).host);
    this.config.logger.warn(
      { host: host.origin, ejectionMs, ejections: host.ejections, err: error },
      'rest-client: host ejected',
    );
    if (health.probe !== 'request') this.scheduleProbe(host, ejectionMs);
  }

  private readmit(host: HostPool, via: 'probe' | 'request', now: number): void {
    if (host.state === 'healthy') return;
    this.ejectedCount--;
    host.state = 'healthy';
    host.probeInFlight = false;
    host.consecutiveFailures = 0;
    host.readmittedAt = now;
    this.emit({ type: 'readmit', host: host.origin, via, ejectedMs: now - host.ejectedAt });
    this.config.logger.info({ host: host.origin, via }, 'rest-client: host readmitted');
  }

  private scheduleProbe(host: HostPool, ms: number): void {
    this.clearProbe(host);
    if (this.closed) return;
    const timer = this.clock.setTimeout(() => {
      host.probeTimer = undefined;
      void this.probe(host);
    }, ms);
    timer.unref?.();
    host.probeTimer = timer;
  }

  private clearProbe(host: HostPool): void {
    if (host.probeTimer !== undefined) this.clock.clearTimeout(host.probeTimer);
    host.probeTimer = undefined;
  }

  /** Sends the configured health probe to an ejected host. */
  private async probe(host: HostPool): Promise<void> {
    const health = this.config.health!;
    const probe = health.probe;
    if (probe === 'request' || this.closed || host.removed || host.state !== 'ejected') return;
    host.state = 'probing';
    host.probeInFlight = true;
    const spec: CallSpec = {
      method: probe.method,
      path: probe.path,
      headers: this.config.headers,
      body: undefined,
      idempotent: true,
      decode: 'text',
      signal: undefined,
      totalMs: probe.timeoutMs,
      perTryMs: Infinity,
      startedAt: this.now(),
      deadline: this.now() + probe.timeoutMs,
      retry: false,
      hedge: false,
    };
    let error: RestClientError | undefined;
    let passed = false;
    const start = this.now();
    // The balancer sees the probe (so a readmitted host is not shunned for its old failures).
    this.config.balancer.start(host);
    try {
      const response = await this.tryOnceUntracked(host, spec);
      passed = probe.expect(response.status);
    } catch (failure) {
      error = failure as RestClientError;
    }
    this.config.balancer.end(host, { ok: passed, durationMs: Math.max(0, this.now() - start) });
    if (this.closed || host.removed || host.state !== 'probing') return;
    const now = this.now();
    if (passed) {
      this.readmit(host, 'probe', now);
    } else {
      this.emit({ type: 'probeFailed', host: host.origin, error });
      this.config.logger.warn({ host: host.origin, err: error }, 'rest-client: probe failed');
      this.eject(host, error, now);
    }
  }

  /** A try that bypasses load and health bookkeeping (health probes). */
  private async tryOnceUntracked(host: HostPool, spec: CallSpec): Promise<Response> {
    const ex = new Exchange(spec, host.origin, 1);
    ex.at = spec.deadline;
    this.deadlines.insert(ex);
    try {
      const data = await ex.request(host.pool, {
        method: spec.method,
        path: spec.path,
        headers: this.wireHeaders(spec, ex),
        signal: ex,
      });
      await data.body.dump();
      return new Response(
        host.origin,
        spec.method,
        spec.path,
        data.statusCode,
        data.statusText,
        data.headers,
        undefined,
        1,
        0,
        true,
      );
    } catch (error) {
      throw ex.aborted && isRestClientError(ex.reason)
        ? ex.reason
        : toRestClientError(error, infoOf(ex), false, this.failureContext);
    } finally {
      this.deadlines.remove(ex);
    }
  }

  // ---------------------------------------------------------------- broadcast

  /**
   * Sends `spec` to every host at once and collects the answers according to `mode` (see
   * `BroadcastMode`); hosts still running when the mode is decided are cancelled. Each host gets
   * one try plus the stale-connection replay; no retries.
   */
  broadcast(
    spec: CallSpec,
    hosts: readonly HostPool[],
    mode: BroadcastMode,
  ): Promise<BroadcastResult> {
    if (this.closed)
      return Promise.reject(new ClosedError({ method: spec.method, path: spec.path }));
    const n = hosts.length;
    const info = { method: spec.method, path: spec.path, idempotent: spec.idempotent };
    if (n === 0) return Promise.reject(new NoHostError('no host to broadcast to', info));
    if (
      mode === null ||
      (typeof mode !== 'object' && mode !== 'all' && mode !== 'settled' && mode !== 'first')
    ) {
      return Promise.reject(
        new InvalidRequestError(`unknown broadcast mode ${JSON.stringify(mode)}`, info),
      );
    }
    const need = typeof mode === 'object' ? mode.quorum : mode === 'first' ? 1 : n;
    if (typeof mode === 'object' && !(Number.isInteger(need) && need >= 1 && need <= n)) {
      return Promise.reject(
        new InvalidRequestError(
          `quorum must be an integer from 1 to ${n} (the hosts), got ${String(need)}`,
          info,
        ),
      );
    }
    const startedAt = this.now();
    spec.startedAt = startedAt;
    spec.deadline = spec.totalMs === Infinity ? Infinity : startedAt + spec.totalMs;
    let link: CallLink | undefined;
    if (spec.signal !== undefined) {
      if (spec.signal.aborted) return Promise.reject(abortReason(spec.signal, spec));
      link = new CallLink(spec.signal, spec);
    }
    const origins = hosts.map(h => h.origin);
    const responses = new Map<string, Response>();
    const failures = new Map<string, RestClientError>();
    const running: (Exchange | undefined)[] = new Array<Exchange | undefined>(n);
    return new Promise<BroadcastResult>((resolve, reject) => {
      let settled = 0;
      let good = 0;
      let bad = 0;
      let decided = false;
      const decide = (satisfied: boolean) => {
        decided = true;
        link?.dispose();
        for (let i = 0; i < n; i++) {
          const ex = running[i];
          if (ex === undefined) continue;
          running[i] = undefined;
          const cancelled = new AbortError('the broadcast was decided', ex.info());
          failures.set(origins[i]!, cancelled);
          ex.abort(cancelled);
        }
        const result: BroadcastResult = {
          mode,
          hosts: origins,
          responses,
          failures,
          complete: responses.size === n,
          satisfied,
        };
        if (satisfied) {
          resolve(result);
          return;
        }
        if (link?.reason !== undefined) {
          reject(link.reason);
          return;
        }
        const first = failures.values().next().value as RestClientError | undefined;
        const summary =
          failures.size > 0
            ? `${failures.size} failed${first ? ` (${first.host ?? ''}: ${first.code})` : ''}`
            : `${responses.size - good} not ok`;
        reject(
          new BroadcastError(
            result,
            `broadcast ${spec.method} ${spec.path} to ${n} hosts: ${describeMode(mode)} not satisfied, ${good} ok, ${summary}`,
            info,
          ),
        );
      };
      const settle = () => {
        settled++;
        if (decided) return;
        if (mode === 'settled') {
          if (settled === n) decide(link?.reason === undefined);
        } else if (mode === 'all') {
          if (bad > 0) decide(false);
          else if (settled === n) decide(true);
        } else {
          if (good >= need) decide(true);
          else if (n - bad < need || settled === n) decide(false);
        }
      };
      for (let i = 0; i < n; i++) {
        const host = hosts[i]!;
        this.tryWithReplay(host, spec, link, ex => (running[i] = ex)).then(
          response => {
            running[i] = undefined;
            if (decided) return;
            responses.set(host.origin, response);
            if (response.ok) good++;
            else if (mode !== 'all' && mode !== 'settled') bad++;
            settle();
          },
          (error: unknown) => {
            running[i] = undefined;
            if (decided) return;
            failures.set(host.origin, this.asFailure(error, host, spec, 1));
            bad++;
            settle();
          },
        );
      }
    });
  }

  /** One try on `host` and, when it meets a stale keep-alive connection or a 408, one immediate replay. */
  private async tryWithReplay(
    host: HostPool,
    spec: CallSpec,
    link: CallLink | undefined,
    track: (ex: Exchange) => void,
  ): Promise<Response> {
    for (let attempt = 1; ; attempt++) {
      const ex = new Exchange(spec, host.origin, attempt);
      track(ex);
      link?.track(ex);
      try {
        const response = await this.tryOnce(host, spec, ex);
        if (response.status === 408 && attempt === 1) {
          this.replay(host, spec, undefined, 408);
          continue;
        }
        return response;
      } catch (error) {
        const failure = this.asFailure(error, host, spec, attempt);
        if (
          attempt === 1 &&
          failure.code === 'SOCKET' &&
          (failure as { stale?: boolean }).stale &&
          spec.idempotent &&
          !ex.aborted
        ) {
          this.replay(host, spec, failure, undefined);
          continue;
        }
        throw failure;
      } finally {
        link?.untrack(ex);
      }
    }
  }

  // ---------------------------------------------------------------- streams

  /** The streaming escape hatch: one try (plus a stale-connection replay), body left to the caller. */
  async stream(host: HostPool, spec: CallSpec): Promise<StreamResponse> {
    if (this.closed)
      throw new ClosedError({ host: host.origin, method: spec.method, path: spec.path });
    const startedAt = this.now();
    spec.startedAt = startedAt;
    spec.deadline = spec.totalMs === Infinity ? Infinity : startedAt + spec.totalMs;
    let link: CallLink | undefined;
    if (spec.signal !== undefined) {
      if (spec.signal.aborted) throw abortReason(spec.signal, spec);
      link = new CallLink(spec.signal, spec);
    }
    for (let attempt = 1; ; attempt++) {
      const ex = new Exchange(spec, host.origin, attempt);
      link?.track(ex);
      const start = this.now();
      let at = spec.deadline;
      if (spec.perTryMs !== Infinity && start + spec.perTryMs < at) {
        at = start + spec.perTryMs;
        ex.phase = 'try';
      }
      ex.at = at;
      this.deadlines.insert(ex);
      if (host.inFlight++ >= host.connections) this.pendingTotal++;
      if (host.state === 'probing') host.probeInFlight = true;
      this.config.balancer.start(host);
      let data;
      try {
        data = await ex.request(host.pool, {
          method: spec.method,
          path: spec.path,
          headers: this.wireHeaders(spec, ex),
          body: spec.body,
          signal: ex,
        });
      } catch (error) {
        this.deadlines.remove(ex);
        const failure =
          ex.aborted && isRestClientError(ex.reason)
            ? ex.reason
            : toRestClientError(error, infoOf(ex), false, this.failureContext);
        this.finish(host, start, 0, failure);
        if (
          attempt === 1 &&
          failure.code === 'SOCKET' &&
          (failure as { stale?: boolean }).stale &&
          spec.idempotent
        ) {
          this.replay(host, spec, failure, undefined);
          continue;
        }
        link?.dispose();
        throw failure;
      }
      const status = data.statusCode;
      const body = data.body;
      let done = false;
      body.once('close', () => {
        if (done) return;
        done = true;
        this.deadlines.remove(ex);
        link?.dispose();
        const failure = body.errored
          ? ex.aborted && isRestClientError(ex.reason)
            ? ex.reason
            : toRestClientError(body.errored, infoOf(ex), true, this.failureContext)
          : undefined;
        this.finish(host, start, status, failure);
      });
      return {
        host: host.origin,
        status,
        reason: data.statusText,
        headers: data.headers,
        body,
        ok: status >= 200 && status < 300,
      };
    }
  }

  // ---------------------------------------------------------------- closing

  /** Stops new calls, lets running tries finish (bounded by their deadlines), closes the pools. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      this.closer.abort(new ClosedError());
      for (const host of this.hosts) this.clearProbe(host);
      await Promise.all([
        ...this.hosts.map(host => host.pool.close()),
        ...[...this.retiring].map(pool => pool.close()),
      ]);
      this.deadlines.stop();
    })();
    return this.closing;
  }

  /** Stops at once: running tries fail with `CLOSED`, the pools are destroyed. */
  async destroy(): Promise<void> {
    this.closed = true;
    this.closer.abort(new ClosedError());
    for (const host of this.hosts) this.clearProbe(host);
    await Promise.all([
      ...this.hosts.map(host => host.pool.destroy(new ClosedError({ host: host.origin }))),
      ...[...this.retiring].map(pool => pool.destroy(new ClosedError())),
    ]);
    this.deadlines.stop();
    this.closing ??= Promise.resolve();
  }
}
