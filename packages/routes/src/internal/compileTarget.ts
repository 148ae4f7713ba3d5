import { RouteConfigError } from '../errors.js';
import type { WorkerContext } from '../workerContext.js';

/** True for a `class` (its source starts with `class`). */
export function isClassTarget(fn: unknown): boolean {
  return typeof fn === 'function' && /^class[\s{]/.test(Function.prototype.toString.call(fn));
}

/** Compiles a target (function, or class + method) into `(input, ctx) => result`. */
export function compileTarget(
  target: unknown,
  methodName: string | undefined,
  deps: boolean,
  where: string,
): (input: unknown, ctx: WorkerContext<any>) => unknown {
  if (typeof target !== 'function')
    throw new RouteConfigError(`${where} must be a function or a class`);
  if (methodName === undefined && !isClassTarget(target)) {
    const fn = target as (input: unknown, ctx: WorkerContext<any>) => unknown;
    return (input, ctx) => fn(input, ctx);
  }
  const method = methodName ?? 'call';
  const proto = (target as { prototype?: Record<string, unknown> }).prototype;
  if (!proto || typeof proto[method] !== 'function')
    throw new RouteConfigError(
      `${where}: class ${target.name || '(anonymous)'} has no method ${method}()`,
    );
  const Cls = target as new () => Record<
    string,
    (input: unknown, ctx: WorkerContext<any>) => unknown
  >;
  return (input, ctx) => {
    const instance = new Cls();
    if (deps) Object.assign(instance, ctx.deps);
    return instance[method]!(input, ctx);
  };
}
