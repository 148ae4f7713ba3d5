import { durationOption } from './internal/durationOption.js';
import { exponentialBackoff, type Backoff } from '@x/resilience';
import { gaePolicy, type AutoscalePolicy } from './autoscalePolicy.js';
import type { Backend, InstanceContext } from './backend.js';
import { InvalidConfigError } from './errors.js';

/** Manual scaling: `instances` long-lived, addressable instances (`'0'…'N-1'`). */
export interface ManualScaling {
  readonly kind: 'manual';
  /** Default 1. */
  readonly instances?: number;
}

/**
 * Basic scaling: up to `maxInstances` addressable instances, started on demand and stopped after
 * `idleTimeoutMs` without requests.
 */
export interface BasicScaling {
  readonly kind: 'basic';
  /** Default 1. */
  readonly maxInstances?: number;
  /** Default 900 000 (15 min). */
  readonly idleTimeoutMs?: number;
}

/** Automatic scaling: anonymous instances added and removed by the autoscaler. */
export interface AutomaticScaling {
  readonly kind: 'automatic';
  /** Instances kept at all times. Default 0. */
  readonly minInstances?: number;
  /** Upper bound. Default 20 (and at most what the backend can provide). */
  readonly maxInstances?: number;
  /** Idle headroom kept above the required instances. Default 1 (App Engine). */
  readonly minIdleInstances?: number;
  /** Idle instances tolerated before stopping one. Default `minIdleInstances`. */
  readonly maxIdleInstances?: number;
  /** A request waits this long for a busy instance before a cold start. Default 100 ms. */
  readonly minPendingLatencyMs?: number;
  /** With no request during a whole window, go down to `minInstances`. Default false. */
  readonly scaleToZero?: boolean;
  /** Window of the peak-concurrency signal. Default 60 000 ms. */
  readonly windowMs?: number;
  /** How often the autoscaler runs. Default 1 000 ms. */
  readonly adjustIntervalMs?: number;
  /** Least time between two scale-down stops. Default 10 000 ms. */
  readonly minMsBetweenQuits?: number;
  /** Send `/_ah/warmup` (or call `onWarmup`) to instances the autoscaler adds. Default false. */
  readonly warmup?: boolean;
  /** The algorithm. Default {@link gaePolicy}. */
  readonly policy?: AutoscalePolicy;
}

/** The scaling mode of a version. */
export type Scaling = ManualScaling | BasicScaling | AutomaticScaling;

/** Lifecycle hooks and deadlines of the instances of a version. */
export interface Lifecycle {
  /** Manual and basic instances: runs before the instance takes traffic (before `/_ah/start` for out-of-process instances). */
  readonly onStart?: (instance: InstanceContext) => void | Promise<void>;
  /** Automatic instances with `warmup` (before `/_ah/warmup` for out-of-process instances). */
  readonly onWarmup?: (instance: InstanceContext) => void | Promise<void>;
  /** After the instance drained, before `/_ah/stop` and the process stop. */
  readonly onStop?: (instance: InstanceContext) => void | Promise<void>;
  /** Longest `/_ah/start` / `/_ah/warmup` (or hook). Default 30 000 ms. */
  readonly readyTimeoutMs?: number;
  /** Longest wait for in-flight requests when stopping; ends as soon as they are done. Default 30 000 ms. */
  readonly drainTimeoutMs?: number;
  /** Longest `/_ah/stop` (or `onStop`). Default 5 000 ms. */
  readonly stopTimeoutMs?: number;
}

/** Active health checking of instances. */
export interface HealthCheck {
  /** Path probed with GET on out-of-process instances. Default `'/_ah/health'`. */
  readonly path?: string;
  /** Custom probe (used instead of `path`; required for in-process backends). */
  readonly check?: (instance: InstanceContext, signal: AbortSignal) => boolean | Promise<boolean>;
  /** Default 5 000 ms. */
  readonly intervalMs?: number;
  /** Default 4 000 ms. */
  readonly timeoutMs?: number;
  /** Consecutive failures before the instance stops getting traffic. Default 2. */
  readonly unhealthyThreshold?: number;
  /** Consecutive successes before it gets traffic again. Default 2. */
  readonly healthyThreshold?: number;
  /** Consecutive failures before it is restarted (SIGKILL for a child process). Default 60. */
  readonly restartThreshold?: number;
  /**
   * Requests in a row not answered by their deadline that take the instance out of rotation at
   * once, before the probes notice (passive ejection). Default 3.
   */
  readonly ejectAfterTimeouts?: number;
}

/** What happens when an instance dies or fails to start. */
export interface RestartPolicy {
  /** Delay before each restart. Default exponential 100 ms … 30 s with jitter. */
  readonly backoff?: Backoff;
  /** Restarts in a row (without `resetAfterMs` of uptime between) before giving up. Default 10. */
  readonly maxRestarts?: number;
  /** Uptime after which the restart count starts over. Default 60 000 ms. */
  readonly resetAfterMs?: number;
}

/** One version of a module. */
export interface VersionSpec {
  /** Where instances come from: `inProcess(handler)`, `childProcess({...})`, `remote(urls)`. */
  readonly backend: Backend;
  /** Default `{ kind: 'manual', instances: 1 }`. */
  readonly scaling?: Scaling;
  /** Requests one instance runs at once. Default 100. */
  readonly maxConcurrentRequests?: number;
  /** Background requests one instance runs at once (a separate capacity). Default 10. */
  readonly maxBackgroundThreads?: number;
  /** Longest wait for a free instance before 503 + `Retry-After`. Default 10 000 ms. */
  readonly maxPendingLatencyMs?: number;
  /** Requests allowed to wait for a free instance. Default 1 000. */
  readonly maxQueuedRequests?: number;
  readonly lifecycle?: Lifecycle;
  /** Default: off. */
  readonly healthCheck?: HealthCheck | false;
  readonly restart?: RestartPolicy;
  /** How manual and basic instances are chosen. Default `'leastLoaded'` (P2C). */
  readonly balancer?: 'leastLoaded' | 'roundRobin';
}

/** A module: its versions and which one is the default. */
export interface ModuleSpec {
  readonly versions: Readonly<Record<string, VersionSpec>>;
  /** Default: the first version listed. */
  readonly defaultVersion?: string;
}

/** Internal: a version spec with every default filled in. */
export interface NormalizedVersionSpec {
  readonly backend: Backend;
  readonly scaling:
    | { readonly kind: 'manual'; readonly instances: number }
    | { readonly kind: 'basic'; readonly maxInstances: number; readonly idleTimeoutMs: number }
    | {
        readonly kind: 'automatic';
        readonly minInstances: number;
        readonly maxInstances: number;
        readonly minIdleInstances: number;
        readonly maxIdleInstances: number;
        readonly minPendingLatencyMs: number;
        readonly scaleToZero: boolean;
        readonly windowMs: number;
        readonly adjustIntervalMs: number;
        readonly minMsBetweenQuits: number;
        readonly warmup: boolean;
        readonly policy: AutoscalePolicy;
      };
  readonly maxConcurrentRequests: number;
  readonly maxBackgroundThreads: number;
  readonly maxPendingLatencyMs: number;
  readonly maxQueuedRequests: number;
  readonly lifecycle: Required<
    Pick<Lifecycle, 'readyTimeoutMs' | 'drainTimeoutMs' | 'stopTimeoutMs'>
  > &
    Pick<Lifecycle, 'onStart' | 'onWarmup' | 'onStop'>;
  readonly healthCheck:
    (Required<Omit<HealthCheck, 'check'>> & Pick<HealthCheck, 'check'>) | undefined;
  readonly restart: Required<RestartPolicy>;
  readonly balancer: 'leastLoaded' | 'roundRobin';
}

const MAX_INSTANCES = 1000;

function int(
  name: string,
  value: unknown,
  fallback: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    throw new InvalidConfigError(
      `${name} must be an integer from ${min} to ${max}, got ${String(value)}`,
    );
  return value;
}

/** A duration of a version spec: from `min` to 2^31−1 ms (the shared `duration` rule, no "no limit"). */
function ms(name: string, value: unknown, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  return durationOption(value, name, { min, allowInfinity: false });
}

function fn(name: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'function')
    throw new InvalidConfigError(`${name} must be a function`);
}

/** Validates a version spec and fills in the defaults (throws `INVALID_CONFIG`). */
export function normalizeVersionSpec(where: string, spec: VersionSpec): NormalizedVersionSpec {
  if (typeof spec !== 'object' || spec === null)
    throw new InvalidConfigError(`${where}: spec must be an object`);
  const backend = spec.backend;
  if (
    typeof backend !== 'object' ||
    backend === null ||
    typeof backend.create !== 'function' ||
    typeof backend.kind !== 'string'
  )
    throw new InvalidConfigError(
      `${where}: backend must come from inProcess(), childProcess() or remote()`,
    );
  const backendMax = Math.min(MAX_INSTANCES, backend.maxInstances);
  const s = (spec.scaling ?? { kind: 'manual' }) as Scaling;
  let scaling: NormalizedVersionSpec['scaling'];
  if (s.kind === 'manual') {
    scaling = {
      kind: 'manual',
      instances: int(`${where}: instances`, s.instances, 1, 0, backendMax),
    };
  } else if (s.kind === 'basic') {
    scaling = {
      kind: 'basic',
      maxInstances: int(`${where}: maxInstances`, s.maxInstances, 1, 1, backendMax),
      idleTimeoutMs: ms(`${where}: idleTimeoutMs`, s.idleTimeoutMs, 900_000, 1),
    };
  } else if (s.kind === 'automatic') {
    const minInstances = int(`${where}: minInstances`, s.minInstances, 0, 0, backendMax);
    const maxInstances = int(
      `${where}: maxInstances`,
      s.maxInstances,
      Math.min(20, backendMax),
      1,
      backendMax,
    );
    if (minInstances > maxInstances)
      throw new InvalidConfigError(
        `${where}: minInstances ${minInstances} > maxInstances ${maxInstances}`,
      );
    const minIdleInstances = int(
      `${where}: minIdleInstances`,
      s.minIdleInstances,
      1,
      0,
      MAX_INSTANCES,
    );
    const maxIdleInstances = int(
      `${where}: maxIdleInstances`,
      s.maxIdleInstances,
      minIdleInstances,
      0,
      MAX_INSTANCES,
    );
    if (maxIdleInstances < minIdleInstances)
      throw new InvalidConfigError(`${where}: maxIdleInstances < minIdleInstances`);
    const policy = s.policy ?? gaePolicy();
    if (typeof policy !== 'object' || policy === null || typeof policy.decide !== 'function')
      throw new InvalidConfigError(`${where}: policy must have a decide() method`);
    scaling = {
      kind: 'automatic',
      minInstances,
      maxInstances,
      minIdleInstances,
      maxIdleInstances,
      minPendingLatencyMs: ms(`${where}: minPendingLatencyMs`, s.minPendingLatencyMs, 100),
      scaleToZero: s.scaleToZero ?? false,
      windowMs: ms(`${where}: windowMs`, s.windowMs, 60_000, 1),
      adjustIntervalMs: ms(`${where}: adjustIntervalMs`, s.adjustIntervalMs, 1_000, 1),
      minMsBetweenQuits: ms(`${where}: minMsBetweenQuits`, s.minMsBetweenQuits, 10_000),
      warmup: s.warmup ?? false,
      policy,
    };
  } else {
    throw new InvalidConfigError(`${where}: scaling.kind must be manual, basic or automatic`);
  }
  const lifecycle = spec.lifecycle ?? {};
  fn(`${where}: lifecycle.onStart`, lifecycle.onStart);
  fn(`${where}: lifecycle.onWarmup`, lifecycle.onWarmup);
  fn(`${where}: lifecycle.onStop`, lifecycle.onStop);
  let healthCheck: NormalizedVersionSpec['healthCheck'];
  if (spec.healthCheck) {
    const h = spec.healthCheck;
    fn(`${where}: healthCheck.check`, h.check);
    if (!h.check && backend.kind === 'in-process')
      throw new InvalidConfigError(
        `${where}: health checks of in-process instances need a check function`,
      );
    const path = h.path ?? '/_ah/health';
    if (typeof path !== 'string' || !path.startsWith('/'))
      throw new InvalidConfigError(`${where}: healthCheck.path must start with /`);
    healthCheck = {
      path,
      check: h.check,
      intervalMs: ms(`${where}: healthCheck.intervalMs`, h.intervalMs, 5_000, 1),
      timeoutMs: ms(`${where}: healthCheck.timeoutMs`, h.timeoutMs, 4_000, 1),
      unhealthyThreshold: int(`${where}: unhealthyThreshold`, h.unhealthyThreshold, 2, 1),
      healthyThreshold: int(`${where}: healthyThreshold`, h.healthyThreshold, 2, 1),
      restartThreshold: int(`${where}: restartThreshold`, h.restartThreshold, 60, 1),
      ejectAfterTimeouts: int(`${where}: ejectAfterTimeouts`, h.ejectAfterTimeouts, 3, 1),
    };
  }
  const restart = spec.restart ?? {};
  const backoff = restart.backoff ?? exponentialBackoff({ initialMs: 100, maxMs: 30_000 });
  if (typeof backoff !== 'object' || backoff === null || typeof backoff.next !== 'function')
    throw new InvalidConfigError(
      `${where}: restart.backoff must be a backoff (exponentialBackoff())`,
    );
  const balancer = spec.balancer ?? 'leastLoaded';
  if (balancer !== 'leastLoaded' && balancer !== 'roundRobin')
    throw new InvalidConfigError(`${where}: balancer must be leastLoaded or roundRobin`);
  return {
    backend,
    scaling,
    maxConcurrentRequests: int(
      `${where}: maxConcurrentRequests`,
      spec.maxConcurrentRequests,
      100,
      1,
      100_000,
    ),
    maxBackgroundThreads: int(
      `${where}: maxBackgroundThreads`,
      spec.maxBackgroundThreads,
      10,
      0,
      10_000,
    ),
    maxPendingLatencyMs: ms(`${where}: maxPendingLatencyMs`, spec.maxPendingLatencyMs, 10_000, 1),
    maxQueuedRequests: int(
      `${where}: maxQueuedRequests`,
      spec.maxQueuedRequests,
      1_000,
      0,
      1_000_000,
    ),
    lifecycle: {
      onStart: lifecycle.onStart,
      onWarmup: lifecycle.onWarmup,
      onStop: lifecycle.onStop,
      readyTimeoutMs: ms(`${where}: readyTimeoutMs`, lifecycle.readyTimeoutMs, 30_000, 1),
      drainTimeoutMs: ms(`${where}: drainTimeoutMs`, lifecycle.drainTimeoutMs, 30_000),
      stopTimeoutMs: ms(`${where}: stopTimeoutMs`, lifecycle.stopTimeoutMs, 5_000, 1),
    },
    healthCheck,
    restart: {
      backoff,
      maxRestarts: int(`${where}: restart.maxRestarts`, restart.maxRestarts, 10, 0),
      resetAfterMs: ms(`${where}: restart.resetAfterMs`, restart.resetAfterMs, 60_000),
    },
    balancer,
  };
}
