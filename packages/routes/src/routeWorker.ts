import {
  isXError,
  policyContext,
  timeout,
  type PolicyContext,
  type TimeoutPolicy,
} from '@x/resilience';
import type { Dependency } from './dependency.js';
import { MessageDeadlineError, DependencyError } from './errors.js';
import type { Meta } from './outcome.js';
import type { RouteRuntime } from './routeRuntime.js';
import { isThenable } from './translator.js';
import type { Delivery } from './entrypoint.js';
import type { WorkerContext } from './workerContext.js';

const EMPTY_DEPS: Readonly<Record<string, unknown>> = Object.freeze({});
const MAX_CALL_STACK = 10;

/** What a {@link RouteWorker} is built from (see `Route.getWorkerInstance`). */
export interface RouteWorkerInit<In> {
  /** The raw message (≙ `fn_args`). */
  readonly args: In;
  readonly meta: Meta;
  readonly delivery: Delivery;
  /** 0 for the first try (≙ `_meta['backoff']['retry_count']`). */
  readonly attempt: number;
}

/** The constructor a route uses for its workers (≙ `worker_class`). */
export type RouteWorkerClass = new (
  route: RouteRuntime,
  init: RouteWorkerInit<any>,
) => RouteWorker<any, any, any>;

class Context implements WorkerContext<any> {
  deps: Readonly<Record<string, unknown>> = EMPTY_DEPS;
  /** Set while a per-attempt timeout runs: its signal replaces the delivery's. */
  policy: PolicyContext | undefined = undefined;
  private stack: readonly string[] | undefined = undefined;

  constructor(
    private readonly worker: { readonly id: string; readonly boundBy: number },
    readonly meta: Meta,
    readonly attempt: number,
    readonly route: string,
    private readonly delivery: Delivery,
    private readonly clock: { now(): number },
  ) {}

  get deadline(): number {
    return this.policy ? this.policy.deadline : this.worker.boundBy;
  }

  get remainingMs(): number {
    const at = this.deadline;
    return at === Infinity ? Infinity : Math.max(0, at - this.clock.now());
  }

  get callId(): string {
    return this.worker.id;
  }

  get signal(): AbortSignal {
    return this.policy ? this.policy.signal : this.delivery.signal;
  }

  get entryId(): unknown {
    return this.delivery.entryId;
  }

  get callIdStack(): readonly string[] {
    if (this.stack) return this.stack;
    const parents = this.meta.callIdStack;
    const stack = Array.isArray(parents) ? [...(parents as string[]), this.callId] : [this.callId];
    return (this.stack = stack.slice(-MAX_CALL_STACK));
  }
}

/**
 * One run of a route's target for one message (≙ micro_framework's `Worker`; named `RouteWorker`
 * so it is not taken for `@x/worker-rpc`'s `Worker`): translates the
 * message through the chain, injects the dependencies, calls the target, and keeps the result or
 * the error; `run()` never rejects. Subclass it (route option `workerClass`) to change a step:
 * `translate()` or `invoke()`.
 */
export class RouteWorker<In = unknown, Out = unknown, R = unknown> {
  private callId: string | undefined = undefined;
  /** The raw message (≙ `fn_args`). */
  readonly args: In;
  readonly meta: Meta;
  readonly delivery: Delivery;
  readonly attempt: number;
  readonly context: WorkerContext<any>;
  /** The translator chain's output, once translated (≙ `translated_args`). */
  translatedArgs: Out | undefined = undefined;
  translated = false;
  result: R | undefined = undefined;
  error: unknown = undefined;
  failed = false;
  finished = false;
  /** True once `run()` started (false when the worker never got a slot). */
  ran = false;
  /** Start time and duration on the route clock (ms). */
  startedAt = 0;
  durationMs = 0;
  /**
   * @internal Whether `run()` reads the clock for {@link startedAt} and {@link durationMs}. The
   * route clears it only while nothing can see them (a worker of its own that no overridden step,
   * callback, backoff, event listener nor histogram receives): two clock reads less per message.
   */
  timed = true;

  constructor(
    readonly route: RouteRuntime,
    init: RouteWorkerInit<In>,
  ) {
    this.args = init.args;
    this.meta = init.meta;
    this.delivery = init.delivery;
    this.attempt = init.attempt;
    this.context = new Context(
      this,
      init.meta,
      init.attempt,
      route.metricLabel,
      init.delivery,
      route.clock,
    );
  }

  /** The call id `<route>.<unique>` (also `context.callId`), made on first use. */
  get id(): string {
    return (this.callId ??= `${this.route.metricLabel}.${this.route.nextCallId()}`);
  }

  /** The per-attempt deadline (route option `timeoutMs`), if any. */
  protected get timeoutPolicy(): TimeoutPolicy | undefined {
    return this.route.timeoutPolicy;
  }

  /** @internal The message deadline bounding this worker (what `ctx.deadline` is outside a timeout). */
  get boundBy(): number {
    return this.messageDeadline;
  }

  /** The message's deadline that bounds this worker (`Infinity`: none). */
  protected get messageDeadline(): number {
    return this.delivery.deadline;
  }

  /** The policy bounding an attempt by the message's deadline alone (no route `timeoutMs`). */
  private static readonly deadlineOnly = new WeakMap<object, TimeoutPolicy>();

  /** Reuses a translation from an earlier try of the same message (sync retries). */
  adoptTranslation(input: Out): void {
    this.translatedArgs = input;
    this.translated = true;
  }

  /** Marks the worker failed without running it (no slot, handed back). */
  fail(error: unknown): this {
    this.error = error;
    this.failed = true;
    this.finished = true;
    return this;
  }

  /** Translates, injects, calls; resolves with this worker once finished. Never rejects. */
  run(): Promise<this> {
    const ran = this.runInline();
    return ran === this ? Promise.resolve(this) : (ran as Promise<this>);
  }

  /**
   * @internal {@link run}, returning this worker itself when every step was synchronous (the route
   * calls it unless a worker class overrides `run`). Never throws.
   */
  runInline(): this | Promise<this> {
    this.ran = true;
    const deadline = this.messageDeadline;
    if (this.timed || deadline !== Infinity) {
      const now = (this.startedAt = this.route.clock.now());
      // a message whose caller stopped waiting is not run
      if (deadline <= now) return this.settle(undefined, new MessageDeadlineError(false), true);
    }
    let pending: unknown;
    try {
      const policy = this.timeoutPolicy;
      pending =
        policy === undefined && deadline === Infinity
          ? this.execute()
          : this.executeBounded(policy, deadline);
    } catch (error) {
      return this.settle(undefined, error, true);
    }
    if (isThenable(pending))
      return Promise.resolve(pending).then(
        value => this.settle(value, undefined, false),
        error => this.settle(undefined, error, true),
      );
    return this.settle(pending, undefined, false);
  }

  /** {@link execute} under the route's per-attempt timeout and/or the message's deadline. */
  private executeBounded(policy: TimeoutPolicy | undefined, deadline: number): unknown {
    if (policy === undefined) {
      const clock = this.route.clock;
      policy = RouteWorker.deadlineOnly.get(clock);
      if (policy === undefined)
        RouteWorker.deadlineOnly.set(
          clock,
          (policy = timeout(Infinity, { clock, scope: 'attempt' })),
        );
    }
    const ctx = this.context as Context;
    return policy.run(
      bound => {
        ctx.policy = bound;
        return this.execute();
      },
      policyContext({ signal: this.delivery.signal, attempt: this.attempt, deadline }),
    );
  }

  private settle(value: unknown, error: unknown, failed: boolean): this {
    // the message's own deadline passed during the attempt: terminal, not an attempt timeout
    if (
      failed &&
      isXError(error, 'TIMEOUT') &&
      this.messageDeadline !== Infinity &&
      this.messageDeadline <= this.route.clock.now()
    )
      error = new MessageDeadlineError(true, undefined, { cause: error });
    if (failed) {
      this.error = error;
      this.failed = true;
    } else this.result = value as R;
    this.finished = true;
    if (this.timed) this.durationMs = this.route.clock.now() - this.startedAt;
    return this;
  }

  /** Translation then invocation, staying synchronous as long as every step is. */
  protected execute(): unknown {
    if (this.translated) return this.invoke(this.translatedArgs as Out, this.context);
    const out = this.translate();
    if (isThenable(out))
      return Promise.resolve(out).then(input => {
        this.adoptTranslation(input);
        return this.invoke(input, this.context);
      });
    this.adoptTranslation(out);
    return this.invoke(out, this.context);
  }

  /** Runs the route's translator chain on the raw message (each step gets the previous output). */
  protected translate(): Out | PromiseLike<Out> {
    const chain = this.route.translate;
    return (chain === undefined ? this.args : chain(this.args, this.context)) as
      Out | PromiseLike<Out>;
  }

  /**
   * Injects the dependencies (nameko order: `workerSetup`, `get`; then after the call
   * `workerResult` and `workerTeardown`) and calls the target with `(input, ctx)`.
   */
  protected invoke(input: Out, ctx: WorkerContext<any>): unknown {
    const deps = this.route.dependencyList;
    if (deps.length === 0) return this.route.callTarget(input, ctx);
    return this.invokeWithDeps(deps, () => this.route.callTarget(input, ctx));
  }

  /** @internal */
  protected async invokeWithDeps(
    deps: ReadonlyArray<readonly [string, Dependency<unknown>]>,
    call: () => unknown,
  ): Promise<unknown> {
    const ctx = this.context as Context;
    const values: Record<string, unknown> = {};
    let ready = 0;
    let result: unknown;
    let error: unknown;
    let failed = false;
    try {
      for (const [name, dep] of deps) {
        try {
          if (dep.workerSetup) await dep.workerSetup(ctx);
          ready++;
          values[name] = await dep.get(ctx);
        } catch (cause) {
          throw new DependencyError(name, { cause });
        }
      }
      ctx.deps = values;
      result = await call();
    } catch (e) {
      error = e;
      failed = true;
    }
    const log = this.route.logger;
    for (let i = 0; i < ready; i++) {
      const [name, dep] = deps[i]!;
      try {
        if (dep.workerResult) await dep.workerResult(ctx, result, error);
      } catch (err) {
        log.warn({ err, dependency: name, callId: this.id }, 'dependency workerResult failed');
      }
    }
    for (let i = 0; i < ready; i++) {
      const [name, dep] = deps[i]!;
      try {
        if (dep.workerTeardown) await dep.workerTeardown(ctx);
      } catch (err) {
        log.warn({ err, dependency: name, callId: this.id }, 'dependency workerTeardown failed');
      }
    }
    if (failed) throw error;
    return result;
  }
}
