import type { Clock, Logger, TimeoutPolicy } from '@x/resilience';
import type { Dependency } from './dependency.js';
import type { WorkerContext } from './workerContext.js';

/** Which callback a `CallbackWorker` runs. */
export type CallbackKind = 'onFailure' | 'onSuccess' | 'onSettled';

/**
 * What a {@link RouteWorker} (and a `CallbackWorker`) uses of its route: the state handed in when
 * the route builds a worker. `Route` implements it; a custom worker class receives it.
 */
export interface RouteRuntime {
  /** Label of metrics and call ids. */
  readonly metricLabel: string;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Per-attempt deadline of the target (route option `timeoutMs`), if any. */
  readonly timeoutPolicy: TimeoutPolicy | undefined;
  /** Deadline of each callback run (`callbacks.timeoutMs`), if any. */
  readonly callbackTimeoutPolicy: TimeoutPolicy | undefined;
  /** The compiled translator chain (undefined when empty). */
  readonly translate: ((input: unknown, ctx: WorkerContext<any>) => unknown) | undefined;
  /** The injected dependencies, by name, in declaration order. */
  readonly dependencyList: ReadonlyArray<readonly [string, Dependency<unknown>]>;
  /** Calls the target with the translated message. */
  readonly callTarget: (input: unknown, ctx: WorkerContext<any>) => unknown;
  /** A short unique id for the next worker. */
  nextCallId(): string;
  /** Calls one of the route's callbacks. */
  callCallback(kind: CallbackKind, event: unknown, ctx: WorkerContext<any>): unknown;
}
