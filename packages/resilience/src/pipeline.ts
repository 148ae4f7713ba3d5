import { systemClock } from './clock.js';
import { Emitter } from './emitter.js';
import { executeRoot } from './internal/policyBase.js';
import type { Policy, PolicyContext, PolicyEvent, Task } from './policy.js';

type Chain = <T>(task: Task<T>, context: PolicyContext) => Promise<T>;

/**
 * Composes policies, outermost first: `pipeline(fallback, timeout, retry, breaker)` runs the
 * breaker inside the retry inside the timeout inside the fallback. All layers share one context,
 * and `onEvent` delivers the events of every layer (cockatiel's `wrap` only exposes the first).
 */
export class Pipeline implements Policy {
  readonly policies: readonly Policy[];
  private readonly chain: Chain;
  private readonly events = new Emitter<PolicyEvent>();
  private subscribed = false;

  constructor(policies: readonly Policy[]) {
    if (policies.length === 0) throw new RangeError('pipeline needs at least one policy');
    this.policies = policies;
    let chain: Chain = (task, context) => policies[policies.length - 1]!.run(task, context);
    for (let i = policies.length - 2; i >= 0; i--) {
      const policy = policies[i]!;
      const inner = chain;
      chain = (task, context) => policy.run(ctx => inner(task, ctx), context);
    }
    this.chain = chain;
  }

  readonly onEvent = (listener: (event: PolicyEvent) => void) => {
    if (!this.subscribed) {
      this.subscribed = true;
      for (const policy of this.policies) policy.onEvent(event => this.events.emit(event));
    }
    return this.events.on(listener);
  };

  execute<T>(task: Task<T>, signal?: AbortSignal): Promise<T> {
    return executeRoot(
      this,
      task,
      signal,
      (this.policies[0] as { clock?: typeof systemClock }).clock ?? systemClock,
    );
  }

  run<T>(task: Task<T>, context: PolicyContext): Promise<T> {
    return this.chain(task, context);
  }
}

/** A {@link Pipeline} of `policies`, outermost first. */
export function pipeline(...policies: Policy[]): Pipeline {
  return new Pipeline(policies);
}

/** Same as {@link pipeline} (cockatiel's name). */
export const wrap = pipeline;
