import { coarseNowOf } from './coarseNow.js';
import { duration } from './duration.js';
import { ConsecutiveBreaker, type IBreaker } from 'cockatiel';
import type { Dispatcher } from 'undici';
import { createAgent, type ProxyOption, type TlsOptions } from './agent.js';
import type { Backoff } from './backoff.js';
import type { BreakerStore } from './breakerStore.js';
import { SlowCallBreaker } from './breakers/slowCallBreaker.js';
import { Bulkhead } from './bulkhead.js';
import { Call } from './call.js';
import { CircuitBreaker } from './circuitBreaker.js';
import { systemClock, type Clock } from './clock.js';
import { Emitter, listenerChanges } from './emitter.js';
import { HedgePolicy, type HedgeOptions } from './hedge.js';
import { abortable } from './internal/policyBase.js';
import { rejectLater } from './internal/rejectLater.js';
import { FaultTolerantCall, type FaultTolerantLayers } from './internal/faultTolerantCall.js';
import { timerQueue } from './timerQueue.js';
import { Scope } from './internal/scope.js';
import { AbortedError } from './errors.js';
import { byNetloc, keyed, type KeyedPolicy } from './keyed.js';
import { LatencyHistogram } from './latencyHistogram.js';
import { LoadBalancePolicy, type LoadBalancerOption } from './loadBalance.js';
import { silentLogger, type Logger } from './logger.js';
import { noopMetrics, type Metrics, type Tags } from './metrics/metrics.js';
import { Pipeline } from './pipeline.js';
import type { CircuitStateName, Policy, PolicyEvent, Task } from './policy.js';
import { RetryPolicy } from './retry.js';
import { RetryBudget, type RetryBudgetOptions } from './retryBudget.js';
import { TimeoutPolicy } from './timeout.js';
import { errorCode, isLocalRejection } from './classify.js';
import { Tracer, type TraceSpan } from './tracing.js';

/** Spans of `faultTolerant` calls (`@x/resilience`, channel `x:resilience:faultTolerant`). */
export const faultTolerantTracer = new Tracer('@x/resilience', 'x:resilience:faultTolerant');
const tracer = faultTolerantTracer;

/** Options of {@link faultTolerant}: dace's parameters in camelCase and milliseconds, plus a few more. */
export interface FaultTolerantOptions<A extends unknown[] = unknown[], R = unknown> {
  /** Id used in stats, metrics and logs (dace's `dependency_id`). Default: the function's name. */
  readonly dependencyId?: string;
  /** Time source (dace's `reactor`). Default: the system clock. */
  readonly clock?: Clock;
  /** How long a circuit stays open before a probe (dace's `circuit_reset_timeout`): ms or a growing backoff. Default 10 000. */
  readonly circuitResetTimeout?: number | Backoff;
  /** Breaker tuning beyond dace: failure strategy (default 5 consecutive failures), probes, store. */
  readonly circuitBreaker?: {
    readonly strategy?: () => IBreaker;
    readonly halfOpenProbes?: number;
    readonly isFailure?: (error: unknown) => boolean;
    readonly store?: BreakerStore;
  };
  /** Where calls go (dace's `load_balancer`): a function returning `[protocol, netloc]`/a URL, or a list of endpoints. */
  readonly loadBalancer?: LoadBalancerOption;
  /** Connections per origin in the HTTP pool (dace's `http_pool_size`). Default 10. */
  readonly httpPoolSize?: number;
  /** Answers when the call finally fails; receives the final error, then the call's arguments. */
  readonly fallback?: (error: unknown, ...args: A) => R | PromiseLike<R>;
  /** Deadline of the whole operation, retries included, in ms. Default 5 000; `Infinity` for none. */
  readonly timeout?: number;
  /** Retries after the first try (dace's `retry_attempts`). Default 3. */
  readonly retryAttempts?: number;
  /** Delay between retries. Default exponential 100 ms → 10 s with decorrelated jitter. */
  readonly retryBackoff?: Backoff;
  /** Retry budget shared by every call of this function. Default 10 % of calls + 10/s; `false` disables. */
  readonly retryBudget?: RetryBudget | RetryBudgetOptions | false;
  /** Concurrent attempts per netloc (dace's `max_open_per_netloc`). Default 10. */
  readonly maxOpenPerNetloc?: number;
  /** Attempts waiting per netloc beyond that before `BULKHEAD_FULL`. Default 1 000. */
  readonly maxQueuedPerNetloc?: number;
  /** Retry attempts that timed out (`Call.http` timeouts). Default false. */
  readonly retryOnTimeout?: boolean;
  /** The operation is safe to repeat. Default true; when false only never-sent failures are retried. */
  readonly idempotent?: boolean;
  /** Expected duration in ms (dace's `expected_in`): slower calls are `degraded`, count toward a slow-call breaker and set the hedge delay. */
  readonly expectedIn?: number;
  /** Hedged requests (off by default): `true` or options; the delay defaults to `expectedIn`. */
  readonly hedge?: boolean | HedgeOptions;
  /** Metrics sink (dace's `statsd`): see `statsdMetrics`, `otelMetrics`, `prometheusMetrics`. */
  readonly metrics?: Metrics;
  /** pino-compatible logger for failures. Default silent. */
  readonly logger?: Logger;
  /** Proxy for `Call.http` (dace's `use_proxy`). */
  readonly proxy?: ProxyOption;
  /** TLS options for `Call.http` (dace's `context_factory`). */
  readonly tls?: TlsOptions;
  /** Connect timeout of `Call.http` in ms. Default 1 000. */
  readonly connectTimeout?: number;
  /** Bring your own undici dispatcher instead (then pool, proxy, TLS and connect options are ignored). */
  readonly agent?: Dispatcher;
  /**
   * Whether `fn` receives the {@link Call} as its first argument. Default true. dace's function
   * could "optionally take a Call"; with `false` it gets only the caller's arguments (a plain
   * function written for dace without a `call` parameter), and the Call is its `this`.
   */
  readonly passCall?: boolean;
}

/** Counters and states of one fault-tolerant function. */
export interface FaultTolerantStats {
  readonly dependencyId: string;
  readonly calls: number;
  readonly successes: number;
  readonly failures: number;
  readonly fallbacks: number;
  readonly retries: number;
  readonly hedges: number;
  readonly timeouts: number;
  readonly degraded: number;
  readonly rejections: {
    readonly circuit: number;
    readonly bulkhead: number;
    readonly budget: number;
  };
  readonly inFlight: number;
  readonly latencyMs: {
    readonly p50: number;
    readonly p99: number;
    readonly mean: number;
    readonly max: number;
  };
  readonly retryBudget: number | undefined;
  readonly circuits: ReadonlyArray<{
    readonly key: string;
    readonly state: CircuitStateName;
    readonly retryAfterMs: number;
  }>;
  readonly limits: ReadonlyArray<{
    readonly key: string;
    readonly running: number;
    readonly queued: number;
  }>;
}

/** Per-call options of {@link FaultTolerantFunction.run}. */
export interface FaultTolerantRunOptions {
  readonly signal?: AbortSignal;
  /** The incoming budget in ms (what is left upstream); caps this call's deadline. */
  readonly timeoutMs?: number;
}

/** The function `faultTolerant` returns: call it like the original, plus controls. */
export interface FaultTolerantFunction<A extends unknown[], R> {
  (...args: A): Promise<R>;
  /**
   * Calls with an abort signal and/or an incoming budget: `timeoutMs` is what is left of the
   * caller's deadline (e.g. from `readDeadlineHeader`); the call's deadline is then the smaller of
   * it and the `timeout` option, and `Call.http` forwards what remains in `DEADLINE_HEADER`.
   */
  run(options: FaultTolerantRunOptions, ...args: A): Promise<R>;
  readonly dependencyId: string;
  /** The undici dispatcher behind `Call.http`. */
  readonly agent: Dispatcher;
  /** The composed policies (timeout, retry, hedge, load balancing, breakers, limits). */
  readonly policy: Policy;
  /** One circuit breaker per netloc. */
  readonly breakers: KeyedPolicy<CircuitBreaker>;
  /** One concurrency limit per netloc. */
  readonly limits: KeyedPolicy<Bulkhead>;
  /** Events of every layer plus `success`/`failure`/`fallback` of whole calls. */
  readonly onEvent: (listener: (event: PolicyEvent) => void) => () => void;
  stats(): FaultTolerantStats;
  /** Closes the HTTP pool (when created here) and detaches breakers from their store. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const STATE_VALUE: Record<CircuitStateName, number> = {
  closed: 0,
  open: 1,
  'half-open': 2,
  isolated: 3,
};

/**
 * dace's `fault_tolerant`: wraps `fn` with, from the outside in, logging and metrics, fallback,
 * a deadline for the whole operation, retry (budgeted, backed off, honouring `Retry-After`),
 * optional hedging, load balancing (a retry goes to another endpoint), a circuit breaker per
 * netloc and a concurrency limit per netloc. `fn` takes a {@link Call} first, or, with
 * `passCall: false`, only the caller's arguments (the Call is then its `this`).
 *
 * With one breaker (no load balancer, no hedging), calls made while the circuit is open fail fast
 * and all return the same promise for that open period: one rejected, already handled promise
 * whose error is the period's `CircuitOpenError`. Stats, metrics, events and the fallback still
 * see every call; a caller that ignores that promise gets no `unhandledRejection`.
 *
 * @example
 * const getUser = faultTolerant(async (call, id: string) => {
 *   const res = await call.http.request('GET', `/users/${id}`);
 *   return res.json<User>();
 * }, { dependencyId: 'users', loadBalancer: ['http://10.0.0.1:8080', 'http://10.0.0.2:8080'], timeout: 2_000 });
 * const user = await getUser('42');
 */
export function faultTolerant<A extends unknown[], R>(
  fn: (this: Call, ...args: A) => R | PromiseLike<R>,
  options: FaultTolerantOptions<A, R> & { readonly passCall: false },
): FaultTolerantFunction<A, R>;
export function faultTolerant<A extends unknown[], R>(
  fn: (call: Call, ...args: A) => R | PromiseLike<R>,
  options?: FaultTolerantOptions<A, R>,
): FaultTolerantFunction<A, R>;
export function faultTolerant<A extends unknown[], R>(
  fn: (...args: any[]) => R | PromiseLike<R>,
  options: FaultTolerantOptions<A, R> = {},
): FaultTolerantFunction<A, R> {
  if (typeof fn !== 'function') throw new TypeError('faultTolerant needs a function');
  const passCall = options.passCall ?? true;
  if (typeof passCall !== 'boolean')
    throw new TypeError(`passCall must be true or false, got ${JSON.stringify(passCall)}`);
  const dependencyId = options.dependencyId ?? (fn.name || 'dependency');
  const clock = options.clock ?? systemClock;
  /** The clock for fast failures: one reading per burst of calls (see coarseNow). */
  const fastNow = coarseNowOf(clock);
  const metrics = options.metrics ?? noopMetrics;
  const log = options.logger ?? silentLogger;
  const ownAgent = options.agent === undefined;
  const agent = options.agent ?? createAgent(options);
  const timeout = duration(options.timeout ?? 5_000, 'timeout', { exclusiveMin: true });
  const expectedIn =
    options.expectedIn === undefined
      ? undefined
      : duration(options.expectedIn, 'expectedIn', { exclusiveMin: true, allowInfinity: false });
  const circuitResetTimeout = duration(
    options.circuitResetTimeout ?? 10_000,
    'circuitResetTimeout',
    { allowInfinity: false },
  );

  const budget =
    options.retryBudget === false
      ? undefined
      : options.retryBudget instanceof RetryBudget
        ? options.retryBudget
        : new RetryBudget({ clock, ...options.retryBudget });
  const breakerOptions = options.circuitBreaker ?? {};
  const strategy = () => {
    const failures = breakerOptions.strategy?.() ?? new ConsecutiveBreaker(5);
    return expectedIn === undefined
      ? failures
      : new SlowCallBreaker({ thresholdMs: expectedIn, inner: failures });
  };
  // Per-netloc policies are created on first use: validate their options now.
  const bulkheadOptions = {
    clock,
    limit: options.maxOpenPerNetloc ?? 10,
    queue: options.maxQueuedPerNetloc ?? 1_000,
  };
  new Bulkhead(bulkheadOptions);
  new CircuitBreaker({
    clock,
    halfOpenAfter: circuitResetTimeout,
    halfOpenProbes: breakerOptions.halfOpenProbes,
  });
  const breakers = keyed(
    byNetloc(dependencyId),
    key =>
      new CircuitBreaker({
        key,
        clock,
        strategy: strategy(),
        halfOpenAfter: circuitResetTimeout,
        halfOpenProbes: breakerOptions.halfOpenProbes,
        isFailure: breakerOptions.isFailure,
        store: breakerOptions.store,
        slowCallMs: expectedIn,
      }),
    { clock },
  );
  const limits = keyed(byNetloc(dependencyId), key => new Bulkhead({ ...bulkheadOptions, key }), {
    clock,
  });
  const retryPolicy = new RetryPolicy({
    clock,
    maxRetries: options.retryAttempts ?? 3,
    backoff: options.retryBackoff,
    budget,
    retryOnTimeout: options.retryOnTimeout,
    idempotent: options.idempotent,
  });
  const loadBalancePolicy = options.loadBalancer
    ? new LoadBalancePolicy(options.loadBalancer, { clock })
    : undefined;
  const deadline = timeout === Infinity ? undefined : new TimeoutPolicy(timeout, { clock });
  const hedgePolicy = options.hedge
    ? new HedgePolicy({
        delay: expectedIn ?? { percentile: 0.95 },
        ...(options.hedge === true ? {} : options.hedge),
        clock,
      })
    : undefined;
  const layers: Policy[] = [
    deadline,
    retryPolicy,
    hedgePolicy,
    loadBalancePolicy,
    breakers,
    limits,
  ].filter((layer): layer is NonNullable<typeof layer> => layer !== undefined);
  const policy = new Pipeline(layers);

  const events = new Emitter<PolicyEvent>();
  const latency = new LatencyHistogram({ clock });
  const tags: Tags = { dependency: dependencyId };
  const counts = {
    calls: 0,
    successes: 0,
    failures: 0,
    fallbacks: 0,
    retries: 0,
    hedges: 0,
    timeouts: 0,
    degraded: 0,
    circuit: 0,
    bulkhead: 0,
    budget: 0,
    inFlight: 0,
  };
  const onTimeout = () => {
    counts.timeouts++;
    metrics.increment('resilience.timeouts', 1, tags);
    if (events.active) events.emit({ type: 'timeout', timeoutMs: timeout });
  };
  const countRejection = (reason: 'circuit' | 'bulkhead' | 'rateLimit') => {
    if (reason === 'circuit') counts.circuit++;
    else if (reason === 'bulkhead') counts.bulkhead++;
    if (metrics !== noopMetrics)
      metrics.increment('resilience.rejections', 1, { dependency: dependencyId, reason });
  };
  const onLayerEvent = (event: PolicyEvent) => {
    switch (event.type) {
      case 'retry':
        counts.retries++;
        metrics.increment('resilience.retries', 1, tags);
        break;
      case 'hedge':
        counts.hedges++;
        metrics.increment('resilience.hedges', 1, tags);
        break;
      case 'timeout':
        return onTimeout(); // emitted by the deadline policy on the hedged path
      case 'degraded':
        counts.degraded++;
        metrics.increment('resilience.degraded', 1, tags);
        break;
      case 'reject':
        countRejection(event.reason);
        break;
      case 'giveUp':
        if (event.reason === 'budget') {
          counts.budget++;
          metrics.increment('resilience.rejections', 1, {
            dependency: dependencyId,
            reason: 'budget',
          });
        }
        break;
      case 'stateChange':
        metrics.gauge('resilience.circuit.state', STATE_VALUE[event.to], {
          dependency: dependencyId,
          netloc: event.key,
        });
        log.warn(
          { dependency: dependencyId, netloc: event.key, from: event.from, to: event.to },
          'circuit state changed',
        );
        break;
    }
    events.emit(event);
  };
  // Straight from each layer, not through the pipeline's own forwarding (one hop less per event);
  // the pipeline subscribes to its layers only once somebody listens to `policy.onEvent`.
  for (const layer of layers) layer.onEvent(onLayerEvent);

  const fallbackFn = options.fallback;
  const measure = metrics !== noopMetrics;
  // Calls with up to two arguments are made without spreading (a spread call costs ~20 ns).
  const invoke = passCall
    ? (scope: Scope, args: readonly unknown[]) => {
        const call = new Call(scope, dependencyId, agent, log);
        switch (args.length) {
          case 0:
            return fn(call);
          case 1:
            return fn(call, args[0]);
          case 2:
            return fn(call, args[0], args[1]);
          default:
            return fn(call, ...args);
        }
      }
    : (scope: Scope, args: readonly unknown[]) => {
        const call = new Call(scope, dependencyId, agent, log);
        switch (args.length) {
          case 0:
            return fn.call(call);
          case 1:
            return fn.call(call, args[0]);
          case 2:
            return fn.call(call, args[0], args[1]);
          default:
            return fn.call(call, ...args);
        }
      };
  const callLayers: FaultTolerantLayers = {
    clock,
    dependencyId,
    timeoutMs: timeout,
    timers: timerQueue(clock),
    retry: retryPolicy,
    budget,
    loadBalance: loadBalancePolicy,
    breakers,
    limits,
    onTimeout,
    invoke,
    settled,
    fallback: fallbackFn && ((error, args) => fallbackFn(error, ...(args as A))),
  };

  /** Bookkeeping of a finished call: counters, latency, metrics, the failure log line. */
  function settled(ok: boolean, error: unknown, durationMs: number, now?: number): void {
    counts.inFlight--;
    latency.record(durationMs, now);
    if (measure) metrics.histogram('resilience.call.duration', durationMs, tags);
    if (ok) {
      counts.successes++;
      if (measure)
        metrics.increment('resilience.calls', 1, { dependency: dependencyId, outcome: 'success' });
      if (events.active) events.emit({ type: 'success', durationMs });
      return;
    }
    counts.failures++;
    if (log !== silentLogger) {
      // Local rejections (open circuit, full limit) can come by the thousand: debug, not warn.
      log[isLocalRejection(error) ? 'debug' : 'warn'](
        { dependency: dependencyId, err: error, code: errorCode(error), durationMs },
        `${dependencyId} call failed`,
      );
    }
    if (events.active) events.emit({ type: 'failure', durationMs, error });
    const outcome = fallbackFn ? 'fallback' : 'failure';
    if (fallbackFn) {
      counts.fallbacks++;
      if (events.active) events.emit({ type: 'fallback', error });
    }
    if (measure) metrics.increment('resilience.calls', 1, { dependency: dependencyId, outcome });
  }

  // Hedged calls run through the composed policies (several attempts in flight at once).
  const hedgedLayers = hedgePolicy ? new Pipeline(deadline ? layers.slice(1) : layers) : undefined;

  function executeHedged(
    signal: AbortSignal | undefined,
    task: (scope: Scope) => unknown,
    args: A,
    budgetMs?: number,
  ): Promise<R> {
    const root = new Scope(clock, undefined, signal);
    if (budgetMs !== undefined) root.deadline = root.startedAt + Math.max(0, budgetMs);
    const start = root.startedAt; // the retry layer deposits into the budget
    const work = task as Task<unknown>;
    const bound =
      budgetMs !== undefined && !deadline ? new TimeoutPolicy(Infinity, { clock }) : deadline;
    const running = (
      bound
        ? bound.runAt(context => hedgedLayers!.run(work, context), root, start)
        : hedgedLayers!.run(work, root)
    ) as Promise<R>;
    return (signal ? abortable(running, root, signal) : running).then(
      value => {
        settled(true, undefined, clock.now() - start);
        return value;
      },
      (error: unknown) => {
        settled(false, error, clock.now() - start);
        if (!fallbackFn) throw error;
        return fallbackFn(error, ...args);
      },
    );
  }

  // Without load balancing every attempt goes to one breaker: an open circuit fails fast here,
  // before any per-call object exists (same decisions, events and counters as the full path).
  const directKey = loadBalancePolicy || hedgedLayers ? undefined : dependencyId;

  let notRetried: unknown; // the last rejection error retryOn refused (one per open period)
  // Fast failures of one open period share one rejected promise, made and handled once, with the
  // breaker's CircuitOpenError for that period: a fresh promise per call (even `then()` of a
  // shared one) costs a promise and a microtask more, about a third of a fast failure. Handled
  // here, it raises no unhandled rejection when a caller ignores it.
  let rejectedError: unknown;
  let rejected: Promise<never> | undefined;
  const rejectWith = <T>(error: unknown): Promise<T> => {
    if (rejected === undefined || error !== rejectedError) {
      rejectedError = error;
      rejected = Promise.reject(error);
      rejected.catch(() => {});
    }
    return rejected as Promise<T>;
  };

  // Whether a fast failure's `reject` and `giveUp` events would reach anybody but this
  // function's own counters (listeners of `onEvent`, `breakers`, a breaker, `policy`). While
  // nobody else listens, failFast counts the rejection itself and emits nothing: the two events
  // through three emitters cost more than the rest of a fast failure. Cached until some emitter
  // gains or loses a listener.
  let heardAt = -1;
  let heardBreaker: CircuitBreaker | undefined;
  let quiet = false;
  const unheard = (breaker: CircuitBreaker): boolean => {
    if (heardAt !== listenerChanges() || heardBreaker !== breaker) {
      heardAt = listenerChanges();
      heardBreaker = breaker;
      // one listener each: the keyed policy's forwarder on the breaker, onLayerEvent on the others
      quiet =
        !events.active &&
        breaker.listenerCount === 1 &&
        breakers.listenerCount === 1 &&
        retryPolicy.listenerCount === 1;
    }
    return quiet;
  };

  function failFast(
    breaker: CircuitBreaker,
    args: A,
    span: TraceSpan | undefined,
    now: number,
  ): Promise<R> | undefined {
    const error = breaker.rejection();
    if (error !== notRetried) {
      if (retryPolicy.retryOn(error, 0)) return undefined; // would be retried: the full path decides
      notRetried = error;
    }
    counts.calls++;
    counts.inFlight++;
    breakers.get(directKey!, now); // marks the key used, as the full path's lookup does
    const heard = !unheard(breaker);
    if (heard) {
      const permit = breaker.tryAdmit(now); // emits `reject`
      if (permit >= 0) {
        // the open period ended in between: hand the probe back and run the call normally
        breaker.release(permit);
        counts.calls--;
        counts.inFlight--;
        return undefined;
      }
    } else {
      countRejection('circuit'); // wouldReject(now) held: tryAdmit(now) would reject
    }
    budget?.deposit(now);
    if (heard) retryPolicy.giveUpFirst(error);
    settled(false, error, 0, now);
    span?.event('circuit.reject', { 'x.breaker_key': breaker.key });
    if (fallbackFn) {
      span?.event('fallback', { 'error.type': error.code });
      try {
        return Promise.resolve(fallbackFn(error, ...args));
      } catch (failure) {
        return rejectLater(failure);
      }
    }
    return rejectWith(error);
  }

  function execute(signal: AbortSignal | undefined, args: A, budgetMs?: number): Promise<R> {
    // Tracing costs about 4 ns when nobody listens (see Tracer.enabled).
    if (tracer.enabled) return traced(signal, args, budgetMs);
    return executeUntraced(signal, args, budgetMs, undefined);
  }

  /** A call under a span named after the dependency; attempts are child spans. */
  function traced(signal: AbortSignal | undefined, args: A, budgetMs?: number): Promise<R> {
    const span = tracer.start(`faultTolerant ${dependencyId}`, {
      attributes: { 'x.dependency_id': dependencyId },
    });
    if (span === undefined) return executeUntraced(signal, args, budgetMs, undefined);
    const promise = span.run(() => executeUntraced(signal, args, budgetMs, span));
    promise.then(
      () => span.end(),
      (error: unknown) => span.end(error),
    );
    return promise;
  }

  function executeUntraced(
    signal: AbortSignal | undefined,
    args: A,
    budgetMs: number | undefined,
    span: TraceSpan | undefined,
  ): Promise<R> {
    if (signal?.aborted) return Promise.reject(new AbortedError({ cause: signal.reason }));
    if (directKey !== undefined) {
      const breaker = breakers.peek(directKey);
      if (breaker !== undefined && breaker.state !== 'closed') {
        const now = fastNow();
        if (breaker.wouldReject(now)) {
          const failed = failFast(breaker, args, span, now);
          if (failed) return failed;
        }
      }
    }
    counts.calls++;
    counts.inFlight++;
    if (hedgedLayers)
      return executeHedged(signal, (scope: Scope) => invoke(scope, args), args, budgetMs);
    return new FaultTolerantCall<R>(callLayers, args, signal, budgetMs, span).start();
  }

  const wrapped = ((...args: A) => execute(undefined, args)) as FaultTolerantFunction<A, R>;
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      for (const [, breaker] of breakers) breaker.close();
      if (ownAgent) await agent.close();
    })());
  Object.defineProperties(wrapped, {
    run: {
      value: (opts: FaultTolerantRunOptions | undefined, ...args: A) => {
        let budgetMs: number | undefined;
        try {
          if (opts?.timeoutMs !== undefined) budgetMs = duration(opts.timeoutMs, 'timeoutMs');
        } catch (error) {
          return Promise.reject(error);
        }
        return execute(opts?.signal, args, budgetMs);
      },
    },
    dependencyId: { value: dependencyId },
    agent: { value: agent },
    policy: { value: policy },
    breakers: { value: breakers },
    limits: { value: limits },
    onEvent: { value: events.on },
    close: { value: close },
    [Symbol.asyncDispose]: { value: close },
    stats: {
      value: (): FaultTolerantStats => ({
        dependencyId,
        calls: counts.calls,
        successes: counts.successes,
        failures: counts.failures,
        fallbacks: counts.fallbacks,
        retries: counts.retries,
        hedges: counts.hedges,
        timeouts: counts.timeouts,
        degraded: counts.degraded,
        rejections: { circuit: counts.circuit, bulkhead: counts.bulkhead, budget: counts.budget },
        inFlight: counts.inFlight,
        latencyMs: {
          p50: latency.percentile(0.5),
          p99: latency.percentile(0.99),
          mean: latency.mean,
          max: latency.max,
        },
        retryBudget: budget?.balance,
        circuits: [...breakers].map(([key, b]) => ({
          key,
          state: b.state,
          retryAfterMs: b.retryAfterMs,
        })),
        limits: [...limits].map(([key, l]) => ({ key, running: l.running, queued: l.queued })),
      }),
    },
  });
  return wrapped;
}
