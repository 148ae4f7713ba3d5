// Errors
export { XError, isXError, withoutStack, type XErrorOptions } from './xError.js';
export {
  ResilienceError,
  TimeoutError,
  CircuitOpenError,
  BulkheadFullError,
  RateLimitedError,
  RetryBudgetExhaustedError,
  NoEndpointError,
  AbortedError,
  HttpError,
  ConnectionError,
  DecodeError,
  InvalidArgumentError,
  type ResilienceErrorCode,
} from './errors.js';
export {
  isRetryable,
  isServiceFailure,
  isLocalRejection,
  isNotSentError,
  errorCode,
  RETRYABLE_STATUSES,
  type RetryableOptions,
} from './classify.js';
export { parseRetryAfter } from './retryAfter.js';

// Time, events, logging
export { systemClock, sleep, type Clock, type TimerHandle } from './clock.js';
export { ManualClock } from './manualClock.js';
export { duration, MAX_TIMER_MS, type DurationOptions } from './duration.js';
export { describeValue } from './describeValue.js';
export { redactUrl } from './redactUrl.js';
export {
  DEADLINE_HEADER,
  LEGACY_RPC_DEADLINE_HEADER,
  readDeadlineHeader,
  deadlineHeaderValue,
  type ReadDeadlineHeaderOptions,
  type DeadlineHeaderSource,
} from './deadlineHeader.js';
export { setTimer, clearTimer, type SafeTimer } from './setTimer.js';
export { TimerQueue, timerQueue, type TimerEntry } from './timerQueue.js';
export { Emitter, type Listen, type Disposer } from './emitter.js';
export { silentLogger, type Logger, type LogFn } from './logger.js';

// Policies
export type { Policy, PolicyContext, PolicyEvent, Task, CircuitStateName } from './policy.js';
export { timeout, timeout as deadline, TimeoutPolicy, type TimeoutOptions } from './timeout.js';
export { retry, RetryPolicy, RetrySchedule, type RetryOptions } from './retry.js';
export { retryBudget, RetryBudget, type RetryBudgetOptions } from './retryBudget.js';
export {
  exponentialBackoff,
  constantBackoff,
  linearBackoff,
  ConstantBackoff,
  DelegateBackoff,
  ExponentialBackoff,
  IterableBackoff,
  decorrelatedJitterGenerator,
  fullJitterGenerator,
  halfJitterGenerator,
  noJitterGenerator,
  type Backoff,
  type BackoffContext,
  type ExponentialBackoffOptions,
  type Jitter,
  type IBackoff,
  type IBackoffFactory,
} from './backoff.js';
export { circuitBreaker, CircuitBreaker, type CircuitBreakerOptions } from './circuitBreaker.js';
export { ConsecutiveBreaker, SamplingBreaker, CountBreaker, type IBreaker } from 'cockatiel';
export { SlowCallBreaker, type SlowCallBreakerOptions } from './breakers/slowCallBreaker.js';
export { memoryBreakerStore, type BreakerStore, type BreakerSnapshot } from './breakerStore.js';
export { bulkhead, Bulkhead, type BulkheadOptions } from './bulkhead.js';
export { concurrencyLimit, type ConcurrencyLimitOptions } from './concurrencyLimit.js';
export { keyed, byNetloc, KeyedPolicy, type KeyedOptions } from './keyed.js';
export { rateLimit, RateLimiter, type RateLimitOptions } from './rateLimit.js';
export { hedge, HedgePolicy, type HedgeOptions, type HedgeDelay } from './hedge.js';
export { fallback, FallbackPolicy, type FallbackFn, type FallbackOptions } from './fallback.js';
export { pipeline, wrap, Pipeline } from './pipeline.js';
export {
  loadBalance,
  LoadBalancePolicy,
  type LoadBalancerOption,
  type EndpointLike,
  type LoadBalanceOptions,
} from './loadBalance.js';

// Load balancers
export { toEndpoint, type Endpoint } from './endpoint.js';
export {
  LoadTracker,
  createBalancer,
  emptyLoad,
  type Balancer,
  type EndpointLoad,
  type EndpointOutcome,
  type LoadTrackerOptions,
} from './balancers/balancer.js';
export { roundRobin, type RoundRobinOptions } from './balancers/roundRobin.js';
export { random, type RandomOptions } from './balancers/random.js';
export { leastLoaded, type LeastLoadedOptions } from './balancers/leastLoaded.js';
export { loadCost, type LoadCostOptions } from './balancers/loadCost.js';
export { Fifo } from './fifo.js';
export { secretMatches } from './secretMatches.js';
export {
  Tracer,
  TraceSpan,
  type TraceAttributes,
  type TraceCarrier,
  type TraceMessage,
  type TraceStartOptions,
} from './tracing.js';
export { endSpanOnClose, type ClosingResponse } from './endSpanOnClose.js';
export { PipelineGate, type PipelineGateOptions } from './pipelineGate.js';
export { policyContext, type PolicyContextInit } from './policyContext.js';
export { peakEwma, type PeakEwmaOptions } from './balancers/peakEwma.js';
export { priority, type PriorityFn, type PriorityOptions } from './balancers/priority.js';

// Metrics
export { LatencyHistogram, type LatencyHistogramOptions } from './latencyHistogram.js';
export { noopMetrics, type Metrics, type Tags } from './metrics/metrics.js';
export {
  memoryMetrics,
  metricKey,
  type MemoryMetrics,
  type MemoryMetricsOptions,
  type MemoryMetricsSnapshot,
  type MemoryHistogramSnapshot,
} from './metrics/memoryMetrics.js';
export { multiMetrics } from './metrics/multiMetrics.js';
export {
  statsdMetrics,
  type StatsdClientLike,
  type StatsdMetricsOptions,
} from './metrics/statsdMetrics.js';
export { otelMetrics, type MeterLike, type OtelMetricsOptions } from './metrics/otelMetrics.js';
export {
  prometheusMetrics,
  DEFAULT_MS_BUCKETS,
  type PromClientLike,
  type PromRegistryLike,
  type PrometheusMetricsOptions,
} from './metrics/prometheusMetrics.js';

// dace: fault_tolerant, Call, Http
export {
  faultTolerant,
  type FaultTolerantOptions,
  type FaultTolerantFunction,
  type FaultTolerantRunOptions,
  type FaultTolerantStats,
} from './faultTolerant.js';
export { Call } from './call.js';
export {
  Http,
  type HttpRequestOptions,
  type HttpResponse,
  type HttpContext,
  type QueryParams,
} from './http.js';
export { createAgent, type AgentOptions, type TlsOptions, type ProxyOption } from './agent.js';
export {
  OutlierDetection,
  outlierDetection,
  type OutlierDetectionOptions,
  type OutlierState,
} from './outlierDetection.js';
export { timeoutSignal, type TimeoutSignal } from './timeoutSignal.js';
export { untilAborted } from './untilAborted.js';
export { withTimeout } from './withTimeout.js';
export { repeat, type Repeating } from './repeat.js';
