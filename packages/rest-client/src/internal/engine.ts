import {
  Bulkhead,
  DEADLINE_HEADER,
  deadlineHeaderValue,
  Emitter,
  isXError,
  policyContext,
  sleep,
  TimerQueue,
  type Clock,
  type RetryPolicy,
  type Tags,
  type TraceSpan,
} from '@x/resilience';
import { setMaxListeners } from 'node:events';
import type { Pool } from 'undici';
import {
  ClosedError,
  InvalidCallError,
  HttpStatusError,
  NoHostError,
  PoolQueueFullError,
  ResponseTooLargeError,
  RetryBudgetDeniedError,
  isRestClientError,
  type RestClientError,
  type RestClientErrorOptions,
} from '../errors.js';
import type { RestClientEvent, RestClientEventOf, RestClientEventType } from '../events.js';
import type { HostStats } from '../hostStats.js';
import type { ResolvedHealth } from '../passiveHealth.js';
import { Response } from '../response.js';
import type { BroadcastMode, BroadcastResult } from '../broadcastResult.js';
import { CachedClock } from './cachedClock.js';
import { CallLink, abortReason } from './callLink.js';
import type { CallSpec } from './callSpec.js';
import { contentTypeOf, decodeText, decompress } from './decode.js';
import { toRestClientError, type FailureContext } from './errorMapping.js';
import { Exchange } from './exchange.js';
import { HostHealth } from './hostHealth.js';
import { HostPool } from './hostPool.js';
import { HostChooser } from './hostChooser.js';
import { HostLoad } from './hostLoad.js';
import { hedgedTry } from './hedgedTry.js';
import { broadcast } from './broadcast.js';
import { callTracer, endTrySpan, requestTracer, startTrySpan } from './requestTracer.js';
import { openStream, type StreamResponse } from './openStream.js';
import type { EngineConfig } from './engineConfig.js';
import type { Picker } from './picker.js';

export type { EngineConfig, ResolvedRetry } from './engineConfig.js';
export type { Picker } from './picker.js';
export type { StreamResponse } from './openStream.js';

/** What a call resolves to: the `Response`, or its decoded body (throwing `HttpStatusError` when not ok). */
export const enum Mode {
  Response = 0,
  Value = 1,
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
  closed = false;
  /** Passive health (ejection, probes), when enabled. */
  readonly health: HostHealth | undefined;
  /** Host choice: eligibility, priority tiers, balancer. */
  readonly chooser: HostChooser;
  /** Per-host load: the balancer's tracker (or the client's, beside a custom balancer). */
  readonly load: HostLoad;
  private readonly limiter: Bulkhead | undefined;
  private readonly closer = new AbortController();
  private closing: Promise<void> | undefined;
  /** @internal */
  readonly failureContext: FailureContext;
  private readonly tags = new WeakMap<HostPool, MetricTags>();
  /** Pools of removed or moved hosts, closing once their requests settle. */
  private readonly retiring = new Set<Pool>();

  constructor(readonly config: EngineConfig) {
    this.clock = config.clock;
    this.cachedClock = config.cachedClock ?? new CachedClock(config.clock);
    this.deadlines = new TimerQueue(config.clock);
    this.load = new HostLoad(config.balancer, this.cachedClock);
    // Every call sleeping in a retry backoff listens to it: not a leak, however many there are.
    setMaxListeners(0, this.closer.signal);
    this.failureContext = {
      connectTimeoutMs: config.pool.connectTimeoutMs,
      maxResponseSize: config.pool.maxResponseSize,
    };
    this.health =
      config.health === undefined
        ? undefined
        : new HostHealth(config.health, {
            clock: config.clock,
            now: () => this.now(),
            hostCount: () => this.hosts.length,
            closed: () => this.closed,
            emit: event => this.emit(event),
            ejected: host =>
              config.metrics?.increment('rest_client.ejections', 1, this.tagsOf(host).host),
            logger: config.logger,
            load: this.load,
            sendProbe: (host, probe) => this.probeOnce(host, probe),
          });
    this.chooser = new HostChooser(config.balancer, this.health, () => this.now());
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
    const host = new HostPool(origin, this.config.pool, this.load.tracker);
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
    this.health?.forget(host);
    this.load.forget(host);
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
      throw new InvalidCallError(`cannot move ${from} to ${to}: ${to} is already a host`);
    this.byOrigin.delete(from);
    this.byOrigin.set(to, host);
    this.tags.delete(host);
    const old = host.rebind(to);
    // The failure streak (and the ejection it caused) was the old address's: the streak restarts,
    // in the balancer's load too, and the new address is probed at once (the probe readmits it,
    // or ejects it again for the next, longer ejection time). Totals and history stay.
    host.load.consecutiveFailures = 0;
    const balancerLoad = this.config.balancer.load(host);
    // a custom balancer's own copy (it may share a frozen zero)
    if (balancerLoad !== host.load && !Object.isFrozen(balancerLoad))
      balancerLoad.consecutiveFailures = 0;
    this.health?.moved(host);
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
    return host.snapshot();
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

  // ---------------------------------------------------------------- choice (see HostChooser)

  /** Custom `priority(host)`, or undefined for the default. */
  get priorityFn(): HostChooser['priorityFn'] {
    return this.chooser.priorityFn;
  }

  set priorityFn(fn: HostChooser['priorityFn']) {
    this.chooser.priorityFn = fn;
  }

  /** Chooses among `candidates`, skipping `tried` (see `HostChooser.choose`). */
  choose(
    candidates: readonly HostPool[],
    tried: readonly HostPool[] | undefined,
  ): HostPool | undefined {
    return this.chooser.choose(candidates, tried);
  }

  /** The default `priority(host)` (see `HostChooser.defaultPriority`). */
  defaultPriority(host: HostPool): number | null {
    return this.chooser.defaultPriority(host);
  }

  /** True when a host may take a request now, health-wise. */
  eligible(host: HostPool): boolean {
    return this.chooser.eligible(host);
  }

  // ---------------------------------------------------------------- calls

  /**
   * Runs a call: tries, replay, retries and hedging; resolves to the Response or its value. When
   * traced and the call may take several tries, a call span is the parent of their spans.
   */
  perform(spec: CallSpec, pick: Picker, mode: Mode): Promise<unknown> {
    if (
      !callTracer.enabled ||
      spec.trace !== undefined ||
      !((spec.retry && this.config.retry) || (spec.hedge && this.config.hedge))
    )
      return this.run(spec, pick, mode);
    const span = callTracer.start(`call ${spec.method}`, {
      attributes: { 'http.request.method': spec.method, 'url.path': spec.path },
    });
    if (span === undefined) return this.run(spec, pick, mode);
    spec.trace = span;
    return this.run(spec, pick, mode).then(
      out => {
        span.end();
        return out;
      },
      (error: unknown) => {
        span.end(error);
        throw error;
      },
    );
  }

  private async run(spec: CallSpec, pick: Picker, mode: Mode): Promise<unknown> {
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
            response = await hedgedTry(this, host, spec, attempts, pick, link);
          } catch (error) {
            failure = this.asFailure(error, host, spec, attempts);
            // The last try to fail may have been a hedge on another host: retry away from it.
            host = this.byOrigin.get(failure.host ?? '') ?? host;
            if (failure.code === 'HTTP_ERROR') response = (failure as HttpStatusError).response;
          }
        } else {
          const ex = new Exchange(spec, host.origin, attempts);
          if (link !== undefined) link.track(ex);
          try {
            const out = await this.attempt(host, spec, ex, mode);
            // In value mode a 2xx answer is its decoded body (no Response is built).
            if (!(out instanceof Response)) return out;
            response = out;
          } catch (error) {
            failure = this.asFailure(error, host, spec, attempts);
          }
          if (link !== undefined) link.untrack(ex);
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
          failure = new HttpStatusError(response, {
            host: host.origin,
            method: spec.method,
            path: spec.path,
            idempotent: spec.idempotent,
            attempts,
          });
        } else if (
          failure!.code === 'SOCKET' &&
          (failure as { stale?: boolean }).stale &&
          spec.idempotent &&
          !replayed
        ) {
          replayed = true;
          this.replay(host, spec, failure, undefined);
          continue;
        } else if (retry === undefined) {
          throw failure;
        }
        // The retry policy decides (its `retryOn` is the client's rule, see `retryRule`).
        const error = failure!;
        (tried ??= []).push(host);
        schedule ??= retry.policy.schedule(
          policyContext({ signal: spec.signal, deadline: spec.deadline }),
        );
        let delay = schedule.next(error);
        if (delay < 0) return this.giveUp(schedule.finalError, error, response, mode, attempts);
        let next = pick(tried);
        if (next !== undefined) delay = 0;
        else next = pick(undefined);
        if (next === undefined) return this.giveUp(undefined, error, response, mode, attempts);
        host.retries++;
        spec.trace?.event('retry', {
          'x.attempt': attempts,
          'server.address': next.origin,
          'x.delay_ms': delay,
          'error.type': error.code,
        });
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
      throw new RetryBudgetDeniedError({
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

  /** @internal */
  replay(
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

  /** @internal */
  asFailure(error: unknown, host: HostPool, spec: CallSpec, attempts: number): RestClientError {
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

  /** A hedge launched a backup try on `host`. @internal */
  hedgeLaunched(host: HostPool, attempt: number): void {
    this.emit({ type: 'hedge', host: host.origin, attempt });
    this.config.metrics?.increment('rest_client.hedges', 1, this.tagsOf(host).host);
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
    if (
      host.load.inFlight >= host.connections &&
      this.config.maxPending !== Infinity &&
      this.pendingTotal() >= this.config.maxPending
    ) {
      throw new PoolQueueFullError(this.config.maxPending, infoOf(ex));
    }
    ex.at = at;
    this.deadlines.insert(ex);
  }

  /**
   * Requests waiting for a connection, over all hosts: read from the hosts' loads (one source),
   * only when a host is saturated. O(hosts).
   */
  private pendingTotal(): number {
    let total = 0;
    const hosts = this.hosts;
    for (let i = 0; i < hosts.length; i++) total += hosts[i]!.pending;
    return total;
  }

  /**
   * The headers of one try: the call's, plus its remaining deadline (the try's `at`: the call's
   * deadline or the per-try one, whichever is earlier) in `DEADLINE_HEADER`, so the server stops
   * when this client stops waiting. A smaller budget set by the caller wins.
   * @internal
   */
  wireHeaders(
    spec: CallSpec,
    ex: Exchange,
    span?: TraceSpan,
  ): Readonly<Record<string, string>> | string[] | undefined {
    if (span !== undefined) {
      const headers = this.deadlineHeaders(spec, ex);
      const out: Record<string, string> = Array.isArray(headers)
        ? { [headers[0]!]: headers[1]! }
        : { ...headers };
      span.inject(out);
      return out;
    }
    return this.deadlineHeaders(spec, ex);
  }

  private deadlineHeaders(
    spec: CallSpec,
    ex: Exchange,
  ): Readonly<Record<string, string>> | string[] | undefined {
    if (!this.config.sendDeadline || ex.at === Infinity) return spec.headers;
    let remainingMs = ex.at - this.now();
    // Without headers of its own, a try sends undici's flat array form (cheaper than an object).
    if (spec.headers === undefined) return [DEADLINE_HEADER, deadlineHeaderValue(remainingMs)];
    const own = spec.headers[DEADLINE_HEADER];
    if (own !== undefined && /^\d+$/.test(own)) remainingMs = Math.min(remainingMs, Number(own));
    return { ...spec.headers, [DEADLINE_HEADER]: deadlineHeaderValue(remainingMs) };
  }

  /** A try goes on the wire: load and probe bookkeeping. @internal */
  started(host: HostPool): void {
    if (host.state === 'probing') host.probeInFlight = true;
    this.load.start(host);
  }

  /**
   * The value of a body read whole by `Exchange.read`: text decoded by content type, or raw
   * bytes, or a compressed body decompressed under the size limit first.
   */
  private bodyValue(spec: CallSpec, ex: Exchange, status: number): unknown {
    const headers = ex.headers;
    const encoding = headers['content-encoding'];
    const contentType = contentTypeOf(headers['content-type']);
    if (spec.decode !== 'bytes' && (encoding === undefined || encoding === 'identity'))
      return decodeText(ex.text(), contentType, spec.decode, status, ex);
    let bytes = ex.bytes();
    if (encoding !== undefined && encoding !== 'identity') {
      bytes = decompress(
        bytes,
        String(encoding),
        this.config.pool.maxResponseSize,
        status,
        contentType,
        infoOf(ex),
      );
    }
    if (spec.decode === 'bytes') return bytes;
    return decodeText(
      Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'),
      contentType,
      spec.decode,
      status,
      ex,
    );
  }

  /** The error of a body announced larger than `maxResponseSize` (`Exchange.read` throws it). */
  private readonly tooLarge = (ex: Exchange): Error =>
    new ResponseTooLargeError(this.config.pool.maxResponseSize, infoOf(ex));

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
  tryOnce(host: HostPool, spec: CallSpec, ex: Exchange): Promise<Response> {
    return this.attempt(host, spec, ex, Mode.Response) as Promise<Response>;
  }

  /**
   * The attempt path of every call ({@link tryOnce}; `perform` calls it directly): in
   * `Mode.Value` a 2xx answer resolves to its decoded body instead of a `Response`.
   */
  private async attempt(
    host: HostPool,
    spec: CallSpec,
    ex: Exchange,
    mode: Mode,
  ): Promise<unknown> {
    // The first try of a call starts when the call did: one clock read saved.
    const start = ex.attempt === 1 && !spec.hedge ? spec.startedAt : this.now();
    this.admit(host, spec, ex, start);
    const limiter = this.limiter;
    if (limiter !== undefined && !limiter.tryAcquire()) {
      try {
        await this.acquireSlot(limiter, ex);
      } catch (error) {
        this.deadlines.remove(ex);
        throw error;
      }
    }
    this.started(host);
    let status = 0;
    let failure: RestClientError | undefined;
    let end = 0;
    const span = requestTracer.enabled ? startTrySpan(spec, ex) : undefined;
    try {
      await ex.read(
        host.pool,
        {
          method: spec.method,
          path: spec.path,
          headers: this.wireHeaders(spec, ex, span),
          body: spec.body,
        },
        this.config.pool.maxResponseSize,
        this.tooLarge,
      );
      status = ex.statusCode;
      const value = this.bodyValue(spec, ex, status);
      end = this.now();
      if (mode === Mode.Value && status >= 200 && status < 300) return value;
      return new Response(
        host.origin,
        spec.method,
        spec.path,
        status,
        ex.statusText,
        ex.headers,
        value,
        ex.attempt,
        end - spec.startedAt,
        spec.idempotent,
      );
    } catch (error) {
      status = ex.statusCode;
      // a failure once the headers arrived is not a stale connection's
      throw (failure = this.tryFailure(error, ex, status !== 0));
    } finally {
      this.deadlines.remove(ex);
      limiter?.release();
      this.finish(host, start, status, failure, end);
      if (span !== undefined) endTrySpan(span, status, failure);
    }
  }

  /** Bookkeeping at the end of a try (`end`: the clock time it ended, when already read). @internal */
  finish(
    host: HostPool,
    start: number,
    status: number,
    failure: RestClientError | undefined,
    end = 0,
  ): void {
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
    this.load.end(host, { ok, neutral, durationMs: durationMs >= 0 ? durationMs : 0 });
    if (!neutral) {
      this.health?.record(host, ok, failure, now);
    } else {
      this.health?.neutral(host); // a request probe that said nothing: let the next one probe
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

  /**
   * Waits for a slot of `maxConnectionsTotal` (the `@x/resilience` bulkhead's `acquire`; the
   * caller releases it), honouring the try's abort.
   */
  private async acquireSlot(limiter: Bulkhead, ex: Exchange): Promise<void> {
    const controller = new AbortController();
    const onAbort = () => controller.abort(ex.reason);
    ex.once('abort', onAbort);
    try {
      await limiter.acquire(controller.signal);
    } catch (error) {
      if (isXError(error, 'BULKHEAD_FULL'))
        throw new PoolQueueFullError(this.config.maxPending, infoOf(ex));
      throw ex.aborted ? ex.reason : error;
    } finally {
      ex.removeListener('abort', onAbort);
    }
  }

  /** An active health probe: one try that bypasses load and health bookkeeping; its status. */
  private async probeOnce(
    host: HostPool,
    probe: Exclude<ResolvedHealth['probe'], 'request'>,
  ): Promise<number> {
    const now = this.now();
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
      startedAt: now,
      deadline: now + probe.timeoutMs,
      retry: false,
      hedge: false,
    };
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
      return data.statusCode;
    } catch (error) {
      throw ex.aborted && isRestClientError(ex.reason)
        ? ex.reason
        : toRestClientError(error, infoOf(ex), false, this.failureContext);
    } finally {
      this.deadlines.remove(ex);
    }
  }

  // ---------------------------------------------------------------- broadcast

  /** Sends `spec` to every host at once (see `broadcast.ts`). */
  broadcast(
    spec: CallSpec,
    hosts: readonly HostPool[],
    mode: BroadcastMode,
  ): Promise<BroadcastResult> {
    return broadcast(this, spec, hosts, mode);
  }

  /** One try on `host` and, when it meets a stale keep-alive connection or a 408, one immediate replay. @internal */
  async tryWithReplay(
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

  /** The streaming escape hatch (see `openStream.ts`). */
  stream(host: HostPool, spec: CallSpec): Promise<StreamResponse> {
    return openStream(this, host, spec);
  }

  // ---------------------------------------------------------------- closing

  /** Stops new calls, lets running tries finish (bounded by their deadlines), closes the pools. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      this.closer.abort(new ClosedError());
      this.health?.stop(this.hosts);
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
    this.health?.stop(this.hosts);
    await Promise.all([
      ...this.hosts.map(host => host.pool.destroy(new ClosedError({ host: host.origin }))),
      ...[...this.retiring].map(pool => pool.destroy(new ClosedError())),
    ]);
    this.deadlines.stop();
    this.closing ??= Promise.resolve();
  }
}
