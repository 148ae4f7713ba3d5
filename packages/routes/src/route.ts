import {
  Emitter,
  isXError,
  sleep,
  timeout,
  type Bulkhead,
  type Clock,
  type Listen,
  type Logger,
  type Metrics,
  type Tags,
  type TimeoutPolicy,
} from '@x/resilience';
import { BackoffPolicy, type RetryTools } from './backoffPolicy.js';
import type { Dependency, DependencyMap, DepsOf } from './dependency.js';
import type {
  Entrypoint,
  EntryRef,
  MessageOf,
  StartRouteOptions,
  RouteHandle,
} from './entrypoint.js';
import { CancelledError, RepublishError, RouteConfigError, RouteStoppedError } from './errors.js';
import { nextId } from './internal/ids.js';
import { checkInt, checkKeys, checkMs } from './internal/options.js';
import { Task } from './internal/task.js';
import { TaskSet } from './internal/taskSet.js';
import type {
  DeferredOutcome,
  FailureOutcome,
  FailureReason,
  Meta,
  Outcome,
  SuccessOutcome,
} from './outcome.js';
import { RunnerContext } from './runnerContext.js';
import { outcomeAttributes, routeTracer } from './routeTracer.js';
import {
  compileTranslators,
  isThenable,
  type ChainOutput,
  type ValidChain,
  type TranslatorLike,
} from './translator.js';
import { CallbackWorker, type CallbackWorkerClass } from './callbackWorker.js';
import type { CallbackKind, RouteRuntime } from './routeRuntime.js';
import { RouteWorker, type RouteWorkerClass } from './routeWorker.js';
import type { Delivery } from './entrypoint.js';
import type { WorkerContext } from './workerContext.js';
import { stopDependencies, type DrainReport, type StopOptions } from './drainReport.js';
import { compileTarget, isClassTarget } from './internal/compileTarget.js';
import { retryCountOf, retryMeta } from './internal/retryMeta.js';
import type { FailureEvent, RouteEvent, SettledEvent, SuccessEvent } from './routeEvent.js';
import type { Callbacks, RouteOptions, Target } from './routeOptions.js';

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
const CALLBACK_KEYS = ['onFailure', 'onSuccess', 'onSettled', 'backoff', 'timeoutMs'];

/** @internal Lets `testRoute` carry asynchronous retries on its fake clock. */
export const TEST_REPUBLISHER = Symbol('routes.testRepublisher');

/**
 * Links entrypoints to a target (≙ micro_framework's `Route`): translates each message through the
 * chain, runs a worker within the worker budget, retries with the backoff (in place or through an
 * entrypoint), runs the callbacks, and returns an explicit {@link Outcome} that the delivering
 * entrypoint settles. `startRoute`, `getWorkerInstance`, `runWorker`, `runBackoff` and
 * `handleFinishedWorker` are the overridable steps. Several entrypoints share one policy.
 */
export class Route<
  In = unknown,
  Out = unknown,
  R = unknown,
  D extends DependencyMap = DependencyMap,
>
  implements RouteHandle<In>, RouteRuntime
{
  readonly target: Target<Out, R, DepsOf<D>>;
  readonly methodName: string | undefined;
  readonly entrypoints: readonly Entrypoint<In>[];
  readonly translators: readonly TranslatorLike<any, any>[];
  readonly backoff: BackoffPolicy | undefined;
  readonly callbacks: Callbacks<Out, R, D> | undefined;
  readonly dependencies: D;
  readonly workerClass: RouteWorkerClass;
  readonly callbackWorkerClass: CallbackWorkerClass;
  /** Per-route worker limit, if any. */
  readonly concurrencyLimit: number | undefined;
  readonly timeoutMs: number | undefined;

  /** @internal The compiled translator chain (undefined when empty). */
  readonly translate: ((input: unknown, ctx: WorkerContext<any>) => unknown) | undefined;
  /** @internal */
  readonly callTarget: (input: unknown, ctx: WorkerContext<any>) => unknown;
  /** @internal */
  readonly dependencyList: ReadonlyArray<readonly [string, Dependency<unknown>]>;
  /** @internal Per-attempt deadline (set when bound: it needs the clock). */
  timeoutPolicy: TimeoutPolicy | undefined = undefined;
  /** @internal */
  callbackTimeoutPolicy: TimeoutPolicy | undefined = undefined;
  /** @internal */
  [TEST_REPUBLISHER]: Entrypoint<any> | undefined = undefined;

  private readonly label: string;
  private readonly overrides: { clock?: Clock; metrics?: Metrics; logger?: Logger };
  private readonly callbackTargets: Partial<
    Record<CallbackKind, (event: unknown, ctx: WorkerContext<any>) => unknown>
  >;
  private readonly events = new Emitter<RouteEvent>();
  private ctx: RunnerContext<any> | undefined = undefined;
  private envClock: Clock | undefined = undefined;
  private envMetrics: Metrics | undefined = undefined;
  private envLogger: Logger | undefined = undefined;
  private tags: Tags | undefined = undefined;
  private limiter: Bulkhead | undefined = undefined;
  private readonly tasks = new TaskSet();
  private runningWorkers = 0;
  private accepting = true;
  private started = false;
  private depsStarted = false;
  private stopping: Promise<DrainReport> | undefined = undefined;

  /** Subscribes to attempts, retries, callbacks and outcomes. */
  readonly onEvent: Listen<RouteEvent> = this.events.on;

  constructor(options: RouteOptions<In, Out, R, D>) {
    checkKeys(options, ROUTE_KEYS, 'Route');
    const {
      target,
      entrypoint,
      translators,
      methodName,
      backoff,
      callbacks,
      dependencies,
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
    this.target = target;
    this.methodName = methodName;
    this.dependencies = (dependencies ?? {}) as D;
    if (this.dependencies === null || typeof this.dependencies !== 'object')
      throw new RouteConfigError('dependencies must be an object of name → dependency');
    this.dependencyList = Object.entries(this.dependencies).map(([name, dep]) => {
      if (dep === null || typeof dep !== 'object' || typeof dep.get !== 'function')
        throw new RouteConfigError(`dependency ${name} has no get(ctx) method`);
      return [name, dep as Dependency<unknown>] as const;
    });
    this.callTarget = compileTarget(
      target,
      methodName,
      this.dependencyList.length > 0,
      'Route target',
    );
    // An arrow written inline as `target: () => ...` is named 'target' by JavaScript: say anonymous.
    const fnName = (target as { name?: string }).name;
    const shown = !fnName || fnName === 'target' ? 'anonymous' : fnName;
    const targetName =
      methodName !== undefined || isClassTarget(target)
        ? `${shown}.${methodName ?? 'call'}`
        : shown;
    if (metricLabel !== undefined && (typeof metricLabel !== 'string' || metricLabel === ''))
      throw new RouteConfigError('metricLabel must be a non-empty string');
    // ≙ str(route).replace(' -> ', '__'): the route class, then the target.
    this.label = metricLabel ?? `${new.target.name}__${targetName}`;

    this.translators =
      translators === undefined
        ? []
        : Array.isArray(translators)
          ? [...translators]
          : [translators as TranslatorLike<any, any>];
    this.translate = compileTranslators(this.translators);

    if (backoff !== undefined && !(backoff instanceof BackoffPolicy))
      throw new RouteConfigError(
        'backoff must be a BackoffPolicy: syncBackoff() or asyncBackoff()',
      );
    this.backoff = backoff;

    const list =
      entrypoint === undefined
        ? []
        : Array.isArray(entrypoint)
          ? [...entrypoint]
          : [entrypoint as Entrypoint<In>];
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
    this.entrypoints = list;

    this.callbacks = callbacks;
    this.callbackTargets = {};
    if (callbacks !== undefined) {
      checkKeys(callbacks, CALLBACK_KEYS, 'Route callbacks');
      for (const kind of ['onFailure', 'onSuccess', 'onSettled'] as const) {
        const cb = callbacks[kind];
        if (cb !== undefined)
          this.callbackTargets[kind] = compileTarget(
            cb,
            undefined,
            this.dependencyList.length > 0,
            `callbacks.${kind}`,
          );
      }
      if (callbacks.backoff !== undefined) {
        if (!(callbacks.backoff instanceof BackoffPolicy) || callbacks.backoff.mode !== 'sync')
          throw new RouteConfigError(
            'callbacks.backoff must be a syncBackoff() (callbacks retry in place)',
          );
      }
    }
    if (callbacks?.timeoutMs !== undefined)
      checkMs(callbacks.timeoutMs, 1, 'callbacks.timeoutMs', true);

    if (typeof workerClass !== 'function')
      throw new RouteConfigError('workerClass must be a class');
    if (typeof callbackWorkerClass !== 'function')
      throw new RouteConfigError('callbackWorkerClass must be a class');
    this.workerClass = workerClass;
    this.callbackWorkerClass = callbackWorkerClass;
    this.concurrencyLimit =
      concurrency === undefined ? undefined : checkInt(concurrency, 1, 'concurrency');
    this.timeoutMs = timeoutMs === undefined ? undefined : checkMs(timeoutMs, 1, 'timeoutMs', true);
    this.overrides = {};
    if (clock !== undefined) this.overrides.clock = clock;
    if (metrics !== undefined) this.overrides.metrics = metrics;
    if (logger !== undefined) this.overrides.logger = logger;
    for (const ep of list) ep.bind(this);
  }

  /** The first entrypoint (≙ `entrypoint`). */
  get entrypoint(): Entrypoint<In> | undefined {
    return this.entrypoints[0];
  }

  /** Label of metrics and call ids (≙ `metric_label`). */
  get metricLabel(): string {
    return this.label;
  }

  get name(): string {
    return this.label;
  }

  /** The runner context this route runs in (a default one is created on first use). */
  get context(): RunnerContext<any> {
    return this.ctx ?? this.bindDefault();
  }

  private bindDefault(): RunnerContext<any> {
    new RunnerContext({ routes: [this] });
    return this.ctx!;
  }

  get clock(): Clock {
    return this.envClock ?? this.resolveEnv().clock;
  }

  get metrics(): Metrics {
    return this.envMetrics ?? this.resolveEnv().metrics;
  }

  get logger(): Logger {
    return this.envLogger ?? this.resolveEnv().logger;
  }

  /** @internal Re-reads clock, metrics and logger (the runner attaches them after binding). */
  resolveEnv(): { clock: Clock; metrics: Metrics; logger: Logger } {
    const context = this.context;
    const clock = (this.envClock = this.overrides.clock ?? context.clock);
    const metrics = (this.envMetrics = this.overrides.metrics ?? context.metrics);
    const logger = (this.envLogger = this.overrides.logger ?? context.logger);
    this.timeoutPolicy =
      this.timeoutMs === undefined
        ? undefined
        : timeout(this.timeoutMs, { clock, scope: 'attempt' });
    const cbTimeout = this.callbacks?.timeoutMs;
    this.callbackTimeoutPolicy =
      cbTimeout === undefined ? undefined : timeout(cbTimeout, { clock, scope: 'attempt' });
    return { clock, metrics, logger };
  }

  get metricTags(): Tags {
    if (this.tags === undefined) this.bindDefault();
    return this.tags!;
  }

  /** Workers that may run for this route at once. */
  get concurrency(): number {
    return Math.min(this.concurrencyLimit ?? Infinity, this.context.maxWorkers);
  }

  /** Messages inside the route (waiting for a slot, running, retrying, in callbacks). */
  get inFlight(): number {
    return this.tasks.size;
  }

  /** Workers running now. */
  get running(): number {
    return this.runningWorkers;
  }

  /** True once `stop()` or `kill()` began: `startRoute` rejects with `ROUTE_STOPPED`. */
  get stopped(): boolean {
    return !this.accepting;
  }

  /** @internal Called by {@link RunnerContext}: binds the route to its context (once). */
  bind(context: RunnerContext<any>): void {
    if (this.ctx !== undefined && this.ctx !== context)
      throw new RouteConfigError(
        `route ${this.label} is already bound to context ${this.ctx.name}`,
      );
    this.ctx = context;
    this.tags = Object.freeze({ context: context.name, route: this.label });
    this.resolveEnv();
    this.limiter =
      this.concurrencyLimit === undefined
        ? undefined
        : context.newLimiter(this.concurrencyLimit, this.label);
  }

  /** @internal A short unique id for the next worker. */
  nextCallId(): string {
    return nextId();
  }

  /** @internal */
  callCallback(kind: CallbackKind, event: unknown, ctx: WorkerContext<any>): unknown {
    return this.callbackTargets[kind]!(event, ctx);
  }

  /** @internal Gives back the task's worker slot (once: by its worker, or by a kill). */
  releaseSlot(task: Task): void {
    if (!task.holding) return;
    task.holding = false;
    task.heldLimiter?.release();
    task.heldBudget?.release();
    task.heldLimiter = task.heldBudget = undefined;
    this.runningWorkers--;
    (this.envMetrics ?? this.metrics).gauge(
      'route.tasks.in_flight',
      this.runningWorkers,
      this.metricTags,
    );
  }

  /**
   * Starts the route on its own (without a {@link Runner}): sets up and starts its dependencies,
   * then its entrypoints. Idempotent.
   */
  async start(): Promise<void> {
    if (this.started) return;
    if (!this.accepting) throw new RouteStoppedError(this.label);
    this.started = true;
    await this.startDependencies();
    await this.startEntrypoints();
  }

  /** @internal */
  async startDependencies(): Promise<void> {
    if (this.depsStarted) return;
    this.depsStarted = true;
    for (const [, dep] of this.dependencyList) await dep.setup?.();
    for (const [, dep] of this.dependencyList) await dep.start?.();
  }

  /** @internal */
  async startEntrypoints(): Promise<void> {
    this.started = true;
    if (this.ctx === undefined) this.bindDefault();
    for (const ep of this.entrypoints) await ep.start();
  }

  /**
   * Runs one message (≙ `start_route`): builds a worker, runs it within the budget, retries, runs
   * callbacks and resolves with the outcome (it never rejects once accepted). Rejects with
   * `ROUTE_STOPPED` after `stop()`. `entryId` is the transport's handle; `meta` travels with retries.
   */
  startRoute(
    entryId: unknown,
    args: In,
    meta?: Meta,
    options?: StartRouteOptions,
  ): Promise<Outcome<R>> {
    if (!this.accepting) return Promise.reject(new RouteStoppedError(this.label));
    if (this.ctx === undefined) this.bindDefault();
    const task = new Task(entryId, options?.entrypoint, meta ?? {}, options?.signal);
    if (options?.deadline !== undefined) task.deadline = options.deadline;
    if (options?.onAbort !== undefined) options.onAbort(task.abortFn);
    this.tasks.add(task);
    const outcome = new Promise<Outcome>(resolve => (task.resolve = resolve));
    task.settle = this.settler;
    task.route = this;
    let running: Promise<Outcome<R>>;
    if (routeTracer.enabled) {
      const span = routeTracer.start(`route ${this.label}`, {
        kind: options?.spanKind ?? 'internal',
        parent: options?.traceContext,
        attributes: { 'x.route': this.label, 'x.entrypoint': options?.entrypoint?.name },
      });
      task.span = span;
      // The target runs inside the span: the spans it starts (HTTP calls, jobs) are its children.
      running = span ? span.run(() => this.execute(task, args)) : this.execute(task, args);
    } else running = this.execute(task, args);
    running.then(task.finish, task.fail);
    return outcome as Promise<Outcome<R>>;
  }

  private execute(task: Task, args: In): Promise<Outcome<R>> {
    try {
      const made = this.getWorkerInstance(args, task.meta, task);
      return isThenable(made)
        ? Promise.resolve(made).then(worker => this.runWorker(task, worker))
        : this.runWorker(task, made);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Settles a task once (its outcome, or `cancelled` when killed first). */
  private readonly settler = (task: Task, outcome: Outcome): void => {
    if (task.done) return;
    task.done = true;
    this.tasks.delete(task);
    task.dispose();
    const span = task.span;
    if (span !== undefined) {
      span.setAttributes(outcomeAttributes(outcome));
      span.end(outcome.kind === 'failure' ? outcome.error : undefined);
    }
    if (this.events.active)
      this.events.emit({ type: 'outcome', entryId: task.entryId, at: this.clock.now(), outcome });
    task.resolve(outcome);
  };

  /** @internal An overridden step threw: the message is settled, never lost. */
  internalFailure(task: Task, error: unknown): Outcome<R> {
    if (isXError(error, 'CANCELLED'))
      return {
        kind: 'cancelled',
        reason: error,
        started: task.started,
        attempts: task.attempts,
        meta: task.meta,
      };
    this.logger.error({ err: error, route: this.label }, 'route step failed');
    return {
      kind: 'failure',
      error,
      terminal: true,
      reason: 'not-retryable',
      attempts: task.attempts,
      meta: task.meta,
    };
  }

  /**
   * ≙ `get_worker_instance`: a new worker (of `workerClass`) for this message and metadata. May
   * be overridden as an async method.
   */
  getWorkerInstance(
    args: In,
    meta: Meta,
    delivery: Delivery,
  ): RouteWorker<In, Out, R> | Promise<RouteWorker<In, Out, R>> {
    return new this.workerClass(this, {
      args,
      meta,
      delivery,
      attempt: retryCountOf(meta),
    }) as RouteWorker<In, Out, R>;
  }

  /**
   * ≙ `run_worker`: spawns the worker; if it failed and the backoff can retry, runs the backoff;
   * then hands the result to `handleFinishedWorker`.
   */
  runWorker(delivery: Delivery, worker: RouteWorker<In, Out, R>): Promise<Outcome<R>> {
    return this.spawnWorker(worker).then(finished => {
      if (
        this.backoff !== undefined &&
        finished.failed &&
        finished.ran &&
        !isXError(finished.error, 'DEADLINE_EXCEEDED')
      )
        return this.retryAndFinish(delivery, finished);
      return this.handleFinishedWorker(delivery, finished);
    });
  }

  private async retryAndFinish(
    delivery: Delivery,
    worker: RouteWorker<In, Out, R>,
  ): Promise<Outcome<R>> {
    const finished = (await this.backoff!.canRetry(worker))
      ? await this.runBackoff(delivery, worker)
      : worker;
    return this.handleFinishedWorker(delivery, finished);
  }

  /**
   * ≙ `run_backoff`: a synchronous backoff returns the last worker; an asynchronous one returns the
   * `deferred` outcome once the retry is published. A stop during a retry sleep, or a failed
   * publish, comes back as that worker failed with `CANCELLED` / `REPUBLISH_FAILED`.
   */
  async runBackoff(
    delivery: Delivery,
    worker: RouteWorker<In, Out, R>,
  ): Promise<RouteWorker<In, Out, R> | DeferredOutcome> {
    const task = delivery as Task;
    try {
      return (await this.backoff!.retry(worker, this.retryTools(task))) as
        RouteWorker<In, Out, R> | DeferredOutcome;
    } catch (error) {
      if (isXError(error, 'CANCELLED') || isXError(error, 'REPUBLISH_FAILED')) {
        worker.error = error;
        return worker;
      }
      throw error;
    }
  }

  private retryTools(task: Task): RetryTools {
    return {
      sleep: async (ms, previous, attempt) => {
        this.noteRetry(task, previous, attempt, ms, 'sync');
        task.meta = retryMeta(previous.meta, attempt);
        task.waiting = true;
        try {
          await sleep(this.clock, ms, task.signal);
        } finally {
          task.waiting = false;
        }
      },
      rerun: async (previous, attempt) => {
        const next = await this.getWorkerInstance(
          previous.args as In,
          retryMeta(previous.meta, attempt),
          task,
        );
        if (previous.translated) next.adoptTranslation(previous.translatedArgs as Out);
        return this.spawnWorker(next);
      },
      republish: async (previous, attempt, delayMs) => {
        const via = this[TEST_REPUBLISHER] ?? this.backoff?.via ?? task.entrypoint;
        if (via?.republish === undefined)
          throw new RepublishError(
            `route ${this.label}: no entrypoint can carry asynchronous retries; give asyncBackoff({ via })`,
          );
        const meta = retryMeta(previous.meta, attempt);
        try {
          await via.republish(task, { message: previous.args, meta }, delayMs);
        } catch (cause) {
          throw new RepublishError(
            `route ${this.label}: could not republish retry ${attempt} through ${via.name}`,
            { cause },
          );
        }
        this.noteRetry(task, previous, attempt, delayMs, 'async');
        return {
          kind: 'deferred',
          retryAt: this.clock.now() + delayMs,
          delayMs,
          attempt,
          via: via.name,
          error: previous.error,
        };
      },
    };
  }

  private noteRetry(
    task: Task,
    previous: RouteWorker<any, any, any>,
    attempt: number,
    delayMs: number,
    mode: 'sync' | 'async',
  ): void {
    this.metrics.increment('route.retries', 1, this.metricTags);
    task.span?.event('retry', {
      'x.attempt': attempt,
      'x.delay_ms': delayMs,
      'x.retry_mode': mode,
    });
    if (this.events.active)
      this.events.emit({
        type: 'retry',
        entryId: task.entryId,
        attempt,
        delayMs,
        mode,
        at: this.clock.now(),
        error: previous.error,
      });
  }

  /**
   * ≙ `handle_finished_worker`: turns the finished worker (or the deferred outcome) into the
   * explicit outcome, running `onFailure`/`onSuccess`/`onSettled` first. Override to validate.
   */
  handleFinishedWorker(
    delivery: Delivery,
    finished: RouteWorker<In, Out, R> | DeferredOutcome,
  ): Outcome<R> | Promise<Outcome<R>> {
    if (!(finished instanceof RouteWorker)) return finished;
    const worker = finished;
    if (!worker.failed) {
      const outcome: SuccessOutcome<R> = {
        kind: 'success',
        value: worker.result as R,
        attempts: worker.attempt + 1,
      };
      return this.callbacks === undefined ? outcome : this.withCallbacks(worker, outcome);
    }
    return this.finishFailure(delivery, worker);
  }

  private async withCallbacks(
    worker: RouteWorker<In, Out, R>,
    outcome: SuccessOutcome<R> | FailureOutcome,
  ): Promise<Outcome<R>> {
    const callbackError = await this.runCallbacks(worker, outcome);
    return callbackError === undefined ? outcome : { ...outcome, callbackError };
  }

  private finishFailure(
    delivery: Delivery,
    worker: RouteWorker<In, Out, R>,
  ): Outcome<R> | Promise<Outcome<R>> {
    const attempts = worker.ran ? worker.attempt + 1 : worker.attempt;
    const error = worker.error;
    if (isXError(error, 'CANCELLED'))
      return {
        kind: 'cancelled',
        reason: error,
        started: (error as CancelledError).started,
        attempts,
        meta: (delivery as Task).meta ?? worker.meta,
      };
    if (!worker.ran)
      return {
        kind: 'failure',
        error,
        terminal: false,
        reason: 'overloaded',
        attempts,
        meta: worker.meta,
      };
    if (isXError(error, 'REPUBLISH_FAILED'))
      return {
        kind: 'failure',
        error,
        terminal: false,
        reason: 'republish-failed',
        attempts,
        meta: worker.meta,
      };
    const reason: FailureReason = isXError(error, 'TRANSLATION_FAILED')
      ? 'translation'
      : isXError(error, 'DEADLINE_EXCEEDED')
        ? 'deadline-exceeded'
        : this.backoff === undefined
          ? 'no-backoff'
          : !this.backoff.isRetryable(error)
            ? 'not-retryable'
            : 'retries-exhausted';
    const outcome: FailureOutcome = {
      kind: 'failure',
      error,
      terminal: true,
      reason,
      attempts,
      meta: worker.meta,
    };
    return this.callbacks === undefined ? outcome : this.withCallbacks(worker, outcome);
  }

  private async runCallbacks(
    worker: RouteWorker<In, Out, R>,
    outcome: SuccessOutcome<R> | FailureOutcome,
  ): Promise<unknown> {
    const targets = this.callbackTargets;
    if (this.callbacks === undefined) return undefined;
    const input = worker.translated ? worker.translatedArgs : undefined;
    let firstError: unknown;
    if (outcome.kind === 'success' && targets.onSuccess) {
      const event: SuccessEvent<Out, R> = {
        message: worker.args,
        input: input as Out,
        result: outcome.value,
        attempts: outcome.attempts,
        meta: worker.meta,
      };
      firstError = await this.startCallbackRoute(worker, 'onSuccess', event);
    }
    if (outcome.kind === 'failure' && targets.onFailure) {
      const event: FailureEvent<Out> = {
        message: worker.args,
        input,
        error: outcome.error,
        reason: outcome.reason,
        attempts: outcome.attempts,
        meta: worker.meta,
      };
      firstError = await this.startCallbackRoute(worker, 'onFailure', event);
    }
    if (targets.onSettled) {
      const event: SettledEvent<Out, R> = {
        message: worker.args,
        input,
        outcome,
        meta: worker.meta,
      };
      const error = await this.startCallbackRoute(worker, 'onSettled', event);
      if (firstError === undefined) firstError = error;
    }
    return firstError;
  }

  /** ≙ `get_callback_worker_instance`: a worker (of `callbackWorkerClass`) for one callback run. */
  async getCallbackWorkerInstance(
    original: RouteWorker<In, Out, R>,
    kind: CallbackKind,
    event: unknown,
    attempt: number,
  ): Promise<CallbackWorker> {
    return new this.callbackWorkerClass(this, original, kind, event, attempt);
  }

  /**
   * ≙ `start_callback_route`: runs one callback, awaited, with the callbacks' own retry policy
   * (never the route's). Resolves with its final error, or undefined when it succeeded.
   */
  async startCallbackRoute(
    original: RouteWorker<In, Out, R>,
    kind: CallbackKind,
    event: unknown,
  ): Promise<unknown> {
    const policy = this.callbacks?.backoff;
    const tags = { ...this.metricTags, callback: kind };
    const task = original.delivery as Task;
    let last!: RouteWorker<any, any, any>;
    const runOnce = async (attempt: number): Promise<RouteWorker<any, any, any>> => {
      const worker = (last = await this.getCallbackWorkerInstance(original, kind, event, attempt));
      await worker.run();
      this.metrics.increment('route.callbacks', 1, tags);
      if (this.events.active)
        this.events.emit({
          type: 'callback',
          entryId: original.delivery.entryId,
          callback: kind,
          attempt,
          at: this.clock.now(),
          failed: worker.failed,
          ...(worker.failed ? { error: worker.error } : {}),
        });
      if (worker.failed) this.metrics.increment('route.callback.failures', 1, tags);
      return worker;
    };
    let worker = await runOnce(0);
    if (worker.failed && policy !== undefined && !task.aborted && (await policy.canRetry(worker)))
      try {
        // the same retry path as the route's sync backoff; a stop ends the sleep between tries
        worker = (await policy.retry(worker, {
          sleep: ms => sleep(this.clock, ms, task.signal),
          rerun: (_previous, attempt) => runOnce(attempt),
          republish: () => Promise.reject(new RouteConfigError('callbacks retry in place')),
        })) as RouteWorker<any, any, any>;
      } catch {
        return last.error;
      }
    if (!worker.failed) return undefined;
    this.logger.warn(
      { err: worker.error, route: this.label, callback: kind },
      'route callback failed',
    );
    return worker.error;
  }

  /**
   * ≙ the runner's `spawn_worker`: takes a slot (per-route limit, then the context budget), runs
   * the worker and records the metrics. A worker that gets no slot comes back failed without
   * running (`BULKHEAD_FULL` when the queue is full, `CANCELLED` when handed back at stop).
   */
  spawnWorker(worker: RouteWorker<In, Out, R>): Promise<RouteWorker<In, Out, R>> {
    const task = worker.delivery as Task;
    if (task.aborted) return Promise.resolve(worker.fail(this.abortError(task)));
    const limiter = this.limiter;
    const budget = this.context.budget;
    if (limiter === undefined || limiter.tryAcquire()) {
      if (budget.tryAcquire()) return this.runInSlot(worker, task, limiter, budget);
      limiter?.release();
    }
    return this.spawnQueued(worker, task, limiter, budget);
  }

  private abortError(task: Task): CancelledError {
    const reason = task.signal.reason;
    return isXError(reason, 'CANCELLED')
      ? (reason as CancelledError)
      : new CancelledError(`route ${this.label}: aborted before the worker started`, false, {
          cause: reason,
        });
  }

  private async spawnQueued(
    worker: RouteWorker<In, Out, R>,
    task: Task,
    limiter: Bulkhead | undefined,
    budget: Bulkhead,
  ): Promise<RouteWorker<In, Out, R>> {
    // Bulkhead.acquire reads the task's signal only when it has to queue: the AbortController of
    // the delivery exists only on this slow path. A stop aborts it, and the waiter leaves the queue.
    task.waiting = true;
    let holdsLimiter = false;
    try {
      if (limiter !== undefined) {
        const wait = limiter.acquire(task);
        if (wait !== undefined) await wait;
        holdsLimiter = true;
      }
      const wait = budget.acquire(task);
      if (wait !== undefined) await wait;
    } catch (error) {
      if (holdsLimiter) limiter!.release();
      return worker.fail(error);
    } finally {
      task.waiting = false;
    }
    if (task.aborted) {
      limiter?.release();
      budget.release();
      return worker.fail(this.abortError(task));
    }
    return this.runInSlot(worker, task, limiter, budget);
  }

  private runInSlot(
    worker: RouteWorker<In, Out, R>,
    task: Task,
    limiter: Bulkhead | undefined,
    budget: Bulkhead,
  ): Promise<RouteWorker<In, Out, R>> {
    task.started = true;
    task.holding = true;
    task.heldLimiter = limiter;
    task.heldBudget = budget;
    task.attempts = worker.attempt + 1;
    task.meta = worker.meta;
    const metrics = this.envMetrics ?? this.metrics;
    const tags = this.tags!;
    this.runningWorkers++;
    metrics.increment('route.tasks', 1, tags);
    metrics.gauge('route.tasks.in_flight', this.runningWorkers, tags);
    return worker.run().then(w => {
      this.releaseSlot(task);
      metrics.histogram('route.task.duration', w.durationMs, tags);
      if (w.failed) metrics.increment('route.task.failures', 1, tags);
      if (this.events.active)
        this.events.emit({
          type: 'attempt',
          entryId: task.entryId,
          callId: w.id,
          attempt: w.attempt,
          at: w.startedAt,
          durationMs: w.durationMs,
          failed: w.failed,
          ...(w.failed ? { error: w.error } : {}),
        });
      return w;
    });
  }

  // ---- stop / drain -----------------------------------------------------------------------

  /** @internal Stops taking work and stops the entrypoints' intake; returns what they handed back. */
  async stopIntake(): Promise<EntryRef[]> {
    this.accepting = false;
    const returned: EntryRef[] = [];
    for (const ep of this.entrypoints) {
      try {
        returned.push(...(await ep.stop()).returned);
      } catch (err) {
        this.logger.warn({ err, route: this.label, entrypoint: ep.name }, 'entrypoint stop failed');
      }
    }
    return returned;
  }

  /** @internal Hands back work that has not started (or sleeps between retries). */
  handBack(): { returned: EntryRef[]; draining: number } {
    const returned: EntryRef[] = [];
    let draining = 0;
    for (const task of this.tasks) {
      if (task.waiting || !task.started) {
        returned.push(this.ref(task));
        task.abort(new CancelledError(`route ${this.label} stopped: handed back`, task.started));
      } else draining++;
    }
    return { returned, draining };
  }

  /** @internal Resolves true once no work is left, false when `timeoutMs` passed first. */
  waitDrained(timeoutMs: number): Promise<boolean> {
    return this.tasks.drained(this.clock, timeoutMs);
  }

  /** @internal Kills every task left: aborts its signal, frees its slot, settles it `cancelled`. */
  killAll(reason: CancelledError): EntryRef[] {
    const killed: EntryRef[] = [];
    for (const task of [...this.tasks]) {
      killed.push(this.ref(task));
      task.abort(reason);
      this.releaseSlot(task);
      task.settle(task, {
        kind: 'cancelled',
        reason,
        started: task.started,
        attempts: task.attempts,
        meta: task.meta,
      });
    }
    return killed;
  }

  /** @internal Stops the dependencies (unless a runner owns them) and closes the entrypoints. */
  async closeAll(stopDeps: boolean, kill = false): Promise<void> {
    for (const ep of this.entrypoints) {
      try {
        await ep.close();
      } catch (err) {
        this.logger.warn(
          { err, route: this.label, entrypoint: ep.name },
          'entrypoint close failed',
        );
      }
    }
    if (stopDeps && this.depsStarted)
      await stopDependencies(
        this.dependencyList.map(([, d]) => d),
        this.logger,
        kill,
      );
  }

  private ref(task: Task): EntryRef {
    return {
      route: this.label,
      entrypoint: task.entrypoint?.name ?? 'direct',
      entryId: task.entryId,
    };
  }

  /**
   * Graceful stop: stops intake (entrypoints hand back what they hold), hands back work that has
   * not started, waits up to `timeoutMs` (default 30 000) for in-flight work, kills what is left
   * (settled `cancelled`, so its entrypoint requeues it), stops the dependencies and closes the
   * entrypoints. Resolves with the {@link DrainReport}; calling it again returns the same report.
   */
  stop(options: StopOptions = {}): Promise<DrainReport> {
    if (this.stopping) return this.stopping;
    const timeoutMs = checkMs(options.timeoutMs ?? 30_000, 0, 'timeoutMs', true);
    this.stopping = (async () => {
      const clock = this.clock;
      const startedAt = clock.now();
      const returned = await this.stopIntake();
      const back = this.handBack();
      returned.push(...back.returned);
      const drained = await this.waitDrained(timeoutMs);
      const killed = drained
        ? []
        : this.killAll(new CancelledError(`route ${this.label}: drain timed out`, true));
      await this.closeAll(true);
      return {
        returned,
        completed: back.draining - killed.length,
        killed,
        timedOut: !drained,
        durationMs: clock.now() - startedAt,
      };
    })();
    return this.stopping;
  }

  /** Stops at once: kills all work (settled `cancelled`), kills the dependencies, closes the entrypoints. */
  async kill(
    reason: unknown = new CancelledError(`route ${this.label} killed`, true),
  ): Promise<void> {
    this.accepting = false;
    const error = isXError(reason, 'CANCELLED')
      ? (reason as CancelledError)
      : new CancelledError(`route ${this.label} killed`, true, { cause: reason });
    for (const ep of this.entrypoints) await ep.stop().catch(() => undefined);
    this.killAll(error);
    await this.closeAll(true, true);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** The message type of a route built from entrypoints `E` (`unknown` without entrypoints). */
export type RouteInput<E> = [MessageOf<E>] extends [never] ? unknown : MessageOf<E>;

/** Options of {@link route}: {@link RouteOptions} with the types inferred from the entrypoints and the chain. */
export type InferredRouteOptions<E, T, R, D extends DependencyMap> = Omit<
  RouteOptions<RouteInput<E>, ChainOutput<T, RouteInput<E>>, R, D>,
  'entrypoint' | 'translators' | 'target' | 'callbacks'
> & {
  readonly entrypoint?: E;
  readonly translators?: T & ValidChain<T, RouteInput<E>>;
  readonly target: Target<ChainOutput<T, RouteInput<E>>, R, DepsOf<D>>;
  readonly callbacks?: Callbacks<ChainOutput<T, RouteInput<E>>, R, D>;
};

/**
 * Builds a {@link Route} with its types inferred: the message type from the entrypoints, each
 * translator's input checked against the previous output, the target's input from the chain's
 * output, the result type from the target, `ctx.deps` from the dependencies.
 */
export function route<
  const E extends Entrypoint<any> | readonly Entrypoint<any>[] = readonly [],
  const T extends TranslatorLike<any, any> | readonly TranslatorLike<any, any>[] = readonly [],
  R = unknown,
  D extends DependencyMap = Record<never, never>,
>(
  options: InferredRouteOptions<E, T, R, D>,
): Route<RouteInput<E>, ChainOutput<T, RouteInput<E>>, Result<R>, D> {
  return new Route(
    options as unknown as RouteOptions<RouteInput<E>, ChainOutput<T, RouteInput<E>>, Result<R>, D>,
  );
}

/** A target that only throws infers `never`; the route's result type is then `unknown`. */
type Result<R> = [R] extends [never] ? unknown : R;
