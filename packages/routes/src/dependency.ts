import type { WorkerContext } from './workerContext.js';

/**
 * A dependency with nameko's lifecycle: `setup` and `start` once when the route (or runner)
 * starts; per worker `workerSetup`, then `get(ctx)` injects the value as `ctx.deps[name]` (and as
 * a property of class targets), then `workerResult` and `workerTeardown` once the target returned;
 * `stop` after the drain (`kill` on `Runner.kill`). Every method is optional except `get`.
 * A `workerSetup`/`get` failure fails the worker with `DEPENDENCY_FAILED`; a `workerResult`/
 * `workerTeardown` failure is logged and does not change the outcome.
 */
export interface Dependency<T = unknown> {
  setup?(): void | Promise<void>;
  start?(): void | Promise<void>;
  workerSetup?(ctx: WorkerContext): void | Promise<void>;
  get(ctx: WorkerContext): T | Promise<T>;
  workerResult?(ctx: WorkerContext, result: unknown, error: unknown): void | Promise<void>;
  workerTeardown?(ctx: WorkerContext): void | Promise<void>;
  stop?(): void | Promise<void>;
  kill?(): void | Promise<void>;
}

/** Dependencies of a route, by the name they are injected under. */
export type DependencyMap = Readonly<Record<string, Dependency<any>>>;

/** The injected values of a {@link DependencyMap}: `{ db: Dependency<Db> }` → `{ db: Db }`. */
export type DepsOf<D> = { readonly [K in keyof D]: D[K] extends Dependency<infer T> ? T : never };
