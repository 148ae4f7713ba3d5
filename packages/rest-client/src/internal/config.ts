import {
  HedgePolicy,
  RETRYABLE_STATUSES,
  RetryBudget,
  RetryPolicy,
  exponentialBackoff,
  silentLogger,
  systemClock,
  type Balancer,
} from '@x/resilience';
import type { RestRetryOptions } from '../restCallOptions.js';
import type { ResolvedHealth } from '../passiveHealth.js';
import type { ResourceOptions } from '../resourceOptions.js';
import type { EngineConfig, ResolvedRetry } from './engineConfig.js';
import type { HostPool } from './hostPool.js';
import type { CachedClock } from './cachedClock.js';
import { durationOption as ms } from './durationOption.js';
import { retryRule } from './retryRule.js';

const MiB = 1024 * 1024;

function positive(name: string, value: unknown, fallback: number, integer = false): number {
  if (value === undefined) return fallback;
  if (
    typeof value !== 'number' ||
    !(value > 0) ||
    (integer && !Number.isInteger(value) && value !== Infinity)
  ) {
    throw new RangeError(
      `${name} must be a ${integer ? 'positive integer' : 'number > 0'}, got ${String(value)}`,
    );
  }
  return value;
}

/**
 * Resolves the `timeout` option of a client or a call into total and per-try milliseconds. A
 * value above 2^31−1 ms means no limit (`Infinity`); a string, `NaN` or `<= 0` is `INVALID_REQUEST`.
 */
export function resolveTimeouts(
  timeout: ResourceOptions['timeout'],
  fallbackTotal: number,
  fallbackPerTry: number,
): { totalMs: number; perTryMs: number } {
  if (timeout === undefined) return { totalMs: fallbackTotal, perTryMs: fallbackPerTry };
  if (typeof timeout !== 'object' || timeout === null)
    return { totalMs: ms(timeout, 'timeout'), perTryMs: fallbackPerTry };
  return {
    totalMs: timeout.total === undefined ? fallbackTotal : ms(timeout.total, 'timeout.total'),
    perTryMs: timeout.perTry === undefined ? fallbackPerTry : ms(timeout.perTry, 'timeout.perTry'),
  };
}

function resolveRetry(
  retry: RestRetryOptions | false | undefined,
  options: ResourceOptions,
): ResolvedRetry | undefined {
  if (retry === false) return undefined;
  const clock = options.clock ?? systemClock;
  const r = retry ?? {};
  let budget: RetryBudget | undefined;
  if (r.budget instanceof RetryBudget) budget = r.budget;
  else if (r.budget !== false) budget = new RetryBudget({ ...r.budget, clock });
  const rule = {
    retryOn: r.retryOn,
    statuses: r.statuses ?? RETRYABLE_STATUSES,
    retryOnTimeout: r.retryOnTimeout ?? false,
  };
  const policy = new RetryPolicy({
    maxRetries: r.maxRetries ?? 2,
    backoff:
      r.backoff ??
      exponentialBackoff({ initialMs: 25, maxMs: 1_000, jitter: 'full', random: options.random }),
    maxRetryAfterMs: r.maxRetryAfterMs ?? 30_000,
    // The one rule of which tries are retried (the engine asks the schedule after every failure).
    retryOn: retryRule(rule),
    budget,
    clock,
  });
  return { policy, budget, ...rule };
}

/** Validates client options and builds the engine configuration. */
export function resolveConfig(
  options: ResourceOptions & { readonly maxConnectionsTotal?: number },
  balancer: Balancer<HostPool>,
  health: ResolvedHealth | undefined,
  cachedClock?: CachedClock,
): EngineConfig {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('options must be an object');
  const clock = options.clock ?? systemClock;
  const { totalMs, perTryMs } = resolveTimeouts(options.timeout, 30_000, Infinity);
  const connectTimeoutMs =
    typeof options.timeout === 'object' && options.timeout.connect !== undefined
      ? ms(options.timeout.connect, 'timeout.connect', { allowInfinity: false })
      : 10_000;
  const maxResponseSize = positive('maxResponseSize', options.maxResponseSize, 16 * MiB, true);
  const hedge =
    options.hedge instanceof HedgePolicy
      ? options.hedge
      : options.hedge
        ? new HedgePolicy({ clock, ...options.hedge })
        : undefined;
  const decode = options.decode ?? 'auto';
  if (!['auto', 'json', 'text', 'bytes'].includes(decode))
    throw new RangeError(`decode must be auto, json, text or bytes, got ${String(decode)}`);
  return {
    clock,
    cachedClock,
    totalMs,
    perTryMs,
    decode,
    headers:
      options.headers && Object.keys(options.headers).length > 0
        ? { ...options.headers }
        : undefined,
    compress: options.compress ?? false,
    sendDeadline: bool('sendDeadline', options.sendDeadline, true),
    pool: {
      connections: positive('connections', options.connections, 16, true),
      pipelining:
        options.keepAlive === false ? 0 : positive('pipelining', options.pipelining, 1, true),
      keepAliveTimeoutMs: ms(options.keepAliveTimeoutMs ?? 4_000, 'keepAliveTimeoutMs', {
        allowInfinity: false,
      }),
      connectTimeoutMs,
      maxResponseSize,
      headersTimeoutMs: totalMs === Infinity ? 300_000 : Math.max(300_000, Math.ceil(totalMs)),
      pool: options.pool,
    },
    retry: resolveRetry(options.retry, options),
    hedge,
    health,
    maxPending: positive('maxPending', options.maxPending, 1024, true),
    maxConnectionsTotal: positive(
      'maxConnectionsTotal',
      options.maxConnectionsTotal,
      Infinity,
      true,
    ),
    metrics: options.metrics,
    logger: options.logger ?? silentLogger,
    balancer,
  };
}

function bool(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean')
    throw new TypeError(`${name} must be true or false, got ${JSON.stringify(value)}`);
  return value;
}
