import type { Clock } from './clock.js';
import { asScope, PolicyBase } from './internal/policyBase.js';
import { invoke } from './internal/invoke.js';
import type { PolicyContext, Task } from './policy.js';

/** Produces the fallback value from the final error. */
export type FallbackFn<T> = (error: unknown, context: PolicyContext) => T | PromiseLike<T>;

/** Options of {@link fallback}. */
export interface FallbackOptions {
  /** Which errors fall back. Default: all. */
  readonly when?: (error: unknown) => boolean;
  readonly clock?: Clock;
}

/** Answers with `fallback(error, context)` when the call fails; the fallback receives the final error. */
export class FallbackPolicy<F> extends PolicyBase {
  constructor(
    private readonly fallbackFn: FallbackFn<F>,
    private readonly options: FallbackOptions = {},
  ) {
    super(options.clock);
    if (typeof fallbackFn !== 'function')
      throw new TypeError('fallback needs a function (error, context) => value');
  }

  run<T>(task: Task<T>, context: PolicyContext): Promise<T> {
    const scope = asScope(context, this.clock);
    return invoke(task, scope).catch((error: unknown) => {
      if (this.options.when && !this.options.when(error)) throw error;
      if (this.events.active) this.events.emit({ type: 'fallback', error });
      return this.fallbackFn(error, scope) as unknown as T;
    });
  }
}

/** A {@link FallbackPolicy}. */
export function fallback<F>(fn: FallbackFn<F>, options?: FallbackOptions): FallbackPolicy<F> {
  return new FallbackPolicy(fn, options);
}
