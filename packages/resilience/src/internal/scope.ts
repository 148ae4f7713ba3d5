import type { Clock } from '../clock.js';
import type { Endpoint } from '../endpoint.js';
import type { PolicyContext } from '../policy.js';

/**
 * The context of one execution (and, forked, of one attempt). Its `signal` is created only when
 * somebody reads it: most successful calls never pay for an AbortController. Aborting a scope
 * aborts every scope forked from it.
 */
export class Scope implements PolicyContext {
  // Fields are declared, not initialised (`declare`): the constructor assigns each one once, in a
  // fixed order. Class field initialisers would define every field and then assign some of them
  // again, which costs on the per-call hot path (`faultTolerant` makes one scope per call).
  declare attempt: number;
  declare deadline: number;
  declare endpoint: Endpoint | undefined;
  /** Endpoints already used by earlier attempts or hedges of this execution (shared by forks). */
  declare tried: Endpoint[] | undefined;
  /** Clock time the execution (or, for a retry, the attempt) started: cheap "now" for bookkeeping. */
  declare startedAt: number;
  declare readonly clock: Clock;
  declare private readonly parent: Scope | undefined;
  declare private readonly external: AbortSignal | undefined;
  declare private controller: AbortController | undefined;
  declare private reason: unknown;
  declare private unlink: (() => void) | undefined;

  constructor(clock: Clock, parent?: Scope, external?: AbortSignal) {
    this.clock = clock;
    this.parent = parent;
    this.external = external;
    this.controller = undefined;
    this.reason = undefined;
    this.unlink = undefined;
    if (parent) {
      this.attempt = parent.attempt;
      this.deadline = parent.deadline;
      this.endpoint = parent.endpoint;
      this.tried = parent.tried;
      this.startedAt = parent.startedAt;
    } else {
      this.attempt = 0;
      this.deadline = Infinity;
      this.endpoint = undefined;
      this.tried = undefined;
      this.startedAt = clock.now();
    }
  }

  /** True once this scope, an ancestor, or the external signal was aborted. */
  get aborted(): boolean {
    return this.reason !== undefined || !!this.external?.aborted || !!this.parent?.aborted;
  }

  /** Why it was aborted (undefined while it is not). */
  get abortReason(): unknown {
    if (this.reason !== undefined) return this.reason;
    if (this.external?.aborted) return this.external.reason;
    return this.parent?.abortReason;
  }

  get signal(): AbortSignal {
    if (this.controller) return this.controller.signal;
    const controller = (this.controller = new AbortController());
    if (this.aborted) {
      controller.abort(this.abortReason);
      return controller.signal;
    }
    const upstream = this.parent ? this.parent.signal : this.external;
    if (upstream) {
      const onAbort = () => controller.abort(upstream.reason);
      upstream.addEventListener('abort', onAbort, { once: true });
      this.unlink = () => upstream.removeEventListener('abort', onAbort);
    }
    return controller.signal;
  }

  /** Milliseconds left before the deadline (Infinity when there is none). */
  remaining(): number {
    return this.deadline === Infinity ? Infinity : this.deadline - this.clock.now();
  }

  /** Aborts this scope and its forks; the first reason wins. */
  abort(reason: unknown): void {
    if (this.reason !== undefined) return;
    this.reason = reason ?? new Error('aborted');
    this.controller?.abort(this.reason);
  }

  /** A child scope for one attempt or layer. */
  fork(): Scope {
    return new Scope(this.clock, this);
  }

  /** Detaches from the parent's signal once the execution settled. */
  dispose(): void {
    if (this.unlink) {
      this.unlink();
      this.unlink = undefined;
    }
  }
}
