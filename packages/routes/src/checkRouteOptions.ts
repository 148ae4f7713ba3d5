import { BackoffPolicy } from './backoffPolicy.js';
import { CallbackWorker, type CallbackWorkerClass } from './callbackWorker.js';
import type { Dependency, DependencyMap } from './dependency.js';
import type { Entrypoint } from './entrypoint.js';
import { RouteConfigError } from './errors.js';
import { RouteCallbacks } from './routeCallbacks.js';
import type { RouteEnvOverrides } from './routeEnv.js';
import type { RouteOptions } from './routeOptions.js';
import { RouteWorker, type RouteWorkerClass } from './routeWorker.js';
import { compileTranslators, type TranslatorLike } from './translator.js';
import type { WorkerContext } from './workerContext.js';
import { compileTarget, isClassTarget } from './internal/compileTarget.js';
import { checkInt, checkKeys, checkMs, listOption } from './internal/options.js';

const ROUTE_KEYS = [
  'target',
  'entrypoint',
  'translators',
  'methodName',
  'backoff',
  'callbacks',
  'dependencies',
  'metricLabel',
  'workerClass',
  'callbackWorkerClass',
  'concurrency',
  'timeoutMs',
  'clock',
  'metrics',
  'logger',
];

type Compiled = (input: unknown, ctx: WorkerContext<any>) => unknown;

/** A route's options, checked and compiled (see {@link checkRouteOptions}). */
export interface CheckedRouteOptions<In, D extends DependencyMap> {
  readonly dependencies: D;
  readonly dependencyList: ReadonlyArray<readonly [string, Dependency<unknown>]>;
  readonly callTarget: Compiled;
  /** The metric label: `metricLabel`, else `<route class>__<target>`. */
  readonly label: string;
  readonly translators: readonly TranslatorLike<any, any>[];
  readonly translate: Compiled | undefined;
  readonly backoff: BackoffPolicy | undefined;
  /** The entrypoints, the asynchronous backoff's `via` included. */
  readonly entrypoints: readonly Entrypoint<In>[];
  readonly callbacks: RouteCallbacks | undefined;
  readonly workerClass: RouteWorkerClass;
  readonly callbackWorkerClass: CallbackWorkerClass;
  readonly concurrencyLimit: number | undefined;
  readonly timeoutMs: number | undefined;
  readonly overrides: RouteEnvOverrides;
}

/**
 * Checks a route's options (a {@link RouteConfigError} names the bad one) and compiles its target,
 * translator chain and callbacks. `routeClass` names the route class in the default label.
 */
export function checkRouteOptions<In, D extends DependencyMap>(
  options: RouteOptions<In, any, any, D>,
  routeClass: string,
): CheckedRouteOptions<In, D> {
  checkKeys(options, ROUTE_KEYS, 'Route');
  const {
    target,
    entrypoint,
    translators,
    methodName,
    backoff,
    callbacks,
    metricLabel,
    workerClass = RouteWorker,
    callbackWorkerClass = CallbackWorker,
    concurrency,
    timeoutMs,
    clock,
    metrics,
    logger,
  } = options;
  if (methodName !== undefined && (typeof methodName !== 'string' || methodName === ''))
    throw new RouteConfigError('methodName must be a non-empty string');
  const dependencies = (options.dependencies ?? {}) as D;
  if (dependencies === null || typeof dependencies !== 'object')
    throw new RouteConfigError('dependencies must be an object of name → dependency');
  const dependencyList = Object.entries(dependencies).map(([name, dep]) => {
    if (dep === null || typeof dep !== 'object' || typeof dep.get !== 'function')
      throw new RouteConfigError(`dependency ${name} has no get(ctx) method`);
    return [name, dep as Dependency<unknown>] as const;
  });
  const withDeps = dependencyList.length > 0;
  const callTarget = compileTarget(target, methodName, withDeps, 'Route target');
  // An arrow written inline as `target: () => ...` is named 'target' by JavaScript: say anonymous.
  const fnName = (target as { name?: string }).name;
  const shown = !fnName || fnName === 'target' ? 'anonymous' : fnName;
  const targetName =
    methodName !== undefined || isClassTarget(target) ? `${shown}.${methodName ?? 'call'}` : shown;
  if (metricLabel !== undefined && (typeof metricLabel !== 'string' || metricLabel === ''))
    throw new RouteConfigError('metricLabel must be a non-empty string');

  const chain = listOption<TranslatorLike<any, any>>(translators);
  const translate = compileTranslators(chain);

  if (backoff !== undefined && !(backoff instanceof BackoffPolicy))
    throw new RouteConfigError('backoff must be a BackoffPolicy: syncBackoff() or asyncBackoff()');

  const list = listOption<Entrypoint<In>>(entrypoint);
  // ≙ AsyncBackOff being an entrypoint of the route: the retries' carrier feeds this route too.
  if (backoff?.via !== undefined && !list.includes(backoff.via as Entrypoint<In>))
    list.push(backoff.via as Entrypoint<In>);
  for (const ep of list) {
    if (
      ep === null ||
      typeof ep !== 'object' ||
      typeof ep.bind !== 'function' ||
      typeof ep.start !== 'function' ||
      typeof ep.stop !== 'function' ||
      typeof ep.close !== 'function'
    )
      throw new RouteConfigError('entrypoint must implement bind, start, stop and close');
    if (
      backoff?.mode === 'async' &&
      backoff.via === undefined &&
      typeof ep.republish !== 'function'
    )
      throw new RouteConfigError(
        `asyncBackoff: entrypoint ${ep.name} cannot republish; give asyncBackoff({ via }) an entrypoint that can`,
      );
  }
  if (new Set(list).size !== list.length)
    throw new RouteConfigError('the same entrypoint is listed twice');

  const checkedCallbacks =
    callbacks === undefined ? undefined : new RouteCallbacks(callbacks, withDeps);

  if (typeof workerClass !== 'function') throw new RouteConfigError('workerClass must be a class');
  if (typeof callbackWorkerClass !== 'function')
    throw new RouteConfigError('callbackWorkerClass must be a class');
  const overrides: RouteEnvOverrides = {};
  if (clock !== undefined) overrides.clock = clock;
  if (metrics !== undefined) overrides.metrics = metrics;
  if (logger !== undefined) overrides.logger = logger;
  return {
    dependencies,
    dependencyList,
    callTarget,
    // ≙ str(route).replace(' -> ', '__'): the route class, then the target.
    label: metricLabel ?? `${routeClass}__${targetName}`,
    translators: chain,
    translate,
    backoff,
    entrypoints: list,
    callbacks: checkedCallbacks,
    workerClass,
    callbackWorkerClass,
    concurrencyLimit:
      concurrency === undefined ? undefined : checkInt(concurrency, 1, 'concurrency'),
    timeoutMs: timeoutMs === undefined ? undefined : checkMs(timeoutMs, 1, 'timeoutMs', true),
    overrides,
  };
}
