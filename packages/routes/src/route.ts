import {
  isXError,
  type Clock,
  type Listen,
  type Logger,
  type Metrics,
  type Tags,
  type TimeoutPolicy,
} from '@x/resilience';
import type { BackoffPolicy } from './backoffPolicy.js';
import type { CallbackWorker, CallbackWorkerClass } from './callbackWorker.js';
import type { Dependency, DependencyMap, DepsOf } from './dependency.js';
import type {
  Delivery,
  Entrypoint,
  EntryRef,
  StartRouteOptions,
  RouteHandle,
} from './entrypoint.js';
import { CancelledError, RouteStoppedError } from './errors.js';
import { checkRouteOptions } from './checkRouteOptions.js';
import { nextId } from './internal/ids.js';
import { checkMs } from './internal/options.js';
import { retryCountOf } from './internal/retryMeta.js';
import { Task } from './internal/task.js';
import { TaskSet } from './taskSet.js';
import type { DeferredOutcome, Meta, Outcome } from './outcome.js';
import { RunnerContext } from './runnerContext.js';
import type { RouteCallbacks } from './routeCallbacks.js';
import { RouteEntrypoints } from './routeEntrypoints.js';
import { RouteEnv } from './routeEnv.js';
import type { RouteEvent } from './routeEvent.js';
import type {
  Callbacks,
  InferredRouteOptions,
  RouteInput,
  RouteOptions,
  Target,
} from './routeOptions.js';
import { RouteRetries, TEST_REPUBLISHER } from './routeRetries.js';
import type { CallbackKind, RouteRuntime } from './routeRuntime.js';
import { routeTracer } from './routeTracer.js';
import { RouteWorker, type RouteWorkerClass } from './routeWorker.js';
import { isThenable, type ChainOutput, type TranslatorLike } from './translator.js';
import { cancelledOutcome, runsCallbacks, workerOutcome } from './workerOutcome.js';
import type { WorkerContext } from './workerContext.js';
import { WorkerSlots } from './workerSlots.js';
import { stopDependencies, type DrainReport, type StopOptions } from './drainReport.js';

/**
 * Links entrypoints to a target (≙ micro_framework's `Route`): translates each message through the
 * chain, runs a worker within the worker budget, retries with the backoff (in place or through an
 * entrypoint), runs the callbacks, and returns an explicit {@link Outcome} that the delivering
 * entrypoint settles. `startRoute`, `getWorkerInstance`, `runWorker`, `runBackoff` and
 * `handleFinishedWorker` are the overridable steps. Several entrypoints share one policy.
 *
 * Its parts hold their own state, handed the route's {@link RouteEnv}: {@link WorkerSlots} (the
 * worker budget), {@link RouteRetries} (the backoff), {@link RouteCallbacks}, {@link workerOutcome}
 * (the explicit outcome), the {@link TaskSet} of deliveries in flight (settle, drain) and the
 * {@link RouteEntrypoints}. They call the overridable steps back through interfaces.
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
  /** @internal */
  [TEST_REPUBLISHER]: Entrypoint<any> | undefined = undefined;

  private readonly env: RouteEnv;
  private readonly slots: WorkerSlots;
  private readonly retries: RouteRetries | undefined;
  private readonly callbackRunner: RouteCallbacks | undefined;
  private readonly tasks: TaskSet;
  private readonly intake: RouteEntrypoints<In>;
  private accepting = true;
  private started = false;
  private depsStarted = false;
  private stopping: Promise<DrainReport> | undefined = undefined;
  /** `runWorker` / `spawnWorker` are not overridden: a message may take the inline path. */
  private readonly inlineRunWorker: boolean;
  private readonly inlineSpawnWorker: boolean;
  /**
   * Its workers reach no code but its own (default worker class and steps, no callbacks, no
   * backoff): their timings need not be measured unless a histogram or a listener takes them.
   */
  private readonly privateWorkers: boolean;

  /** Subscribes to attempts, retries, callbacks and outcomes. */
  readonly onEvent: Listen<RouteEvent>;

  constructor(options: RouteOptions<In, Out, R, D>) {
    const checked = checkRouteOptions<In, D>(options, new.target.name);
    this.target = options.target;
    this.methodName = options.methodName;
    this.dependencies = checked.dependencies;
    this.dependencyList = checked.dependencyList;
    this.callTarget = checked.callTarget;
    this.translators = checked.translators;
    this.translate = checked.translate;
    this.backoff = checked.backoff;
    this.entrypoints = checked.entrypoints;
    this.callbacks = options.callbacks;
    this.callbackRunner = checked.callbacks;
    this.workerClass = checked.workerClass;
    this.callbackWorkerClass = checked.callbackWorkerClass;
    this.concurrencyLimit = checked.concurrencyLimit;
    this.timeoutMs = checked.timeoutMs;
    this.env = new RouteEnv({
      label: checked.label,
      overrides: checked.overrides,
      timeoutMs: checked.timeoutMs,
      callbackTimeoutMs: options.callbacks?.timeoutMs,
      bindDefault: () => this.bindDefault(),
    });
    this.onEvent = this.env.events.on;
    this.tasks = new TaskSet(this.env);
    this.intake = new RouteEntrypoints(checked.entrypoints, this.env);
    this.slots = new WorkerSlots(this.env, checked.concurrencyLimit);
    this.retries = checked.backoff && new RouteRetries(this.env, checked.backoff);
    this.inlineRunWorker = this.runWorker === Route.prototype.runWorker;
    this.inlineSpawnWorker = this.spawnWorker === Route.prototype.spawnWorker;
    this.privateWorkers =
      this.inlineRunWorker &&
      this.inlineSpawnWorker &&
      checked.workerClass === RouteWorker &&
      checked.backoff === undefined &&
      checked.callbacks === undefined &&
      this.getWorkerInstance === Route.prototype.getWorkerInstance &&
      this.handleFinishedWorker === Route.prototype.handleFinishedWorker;
    for (const ep of this.entrypoints) ep.bind(this);
  }

  private bindDefault(): void {
    new RunnerContext({ routes: [this] });
  }

  /** The first entrypoint (≙ `entrypoint`). */
  get entrypoint(): Entrypoint<In> | undefined {
    return this.entrypoints[0];
  }

  /** Label of metrics and call ids (≙ `metric_label`). */
  get metricLabel(): string {
    return this.env.label;
  }

  get name(): string {
    return this.env.label;
  }

  /** The runner context this route runs in (a default one is created on first use). */
  get context(): RunnerContext<any> {
    return this.env.context;
  }

  get clock(): Clock {
    return this.env.clock;
  }

  get metrics(): Metrics {
    return this.env.metrics;
  }

  get logger(): Logger {
    return this.env.logger;
  }

  /** @internal Per-attempt deadline (set when bound: it needs the clock). */
  get timeoutPolicy(): TimeoutPolicy | undefined {
    return this.env.timeoutPolicy;
  }

  /** @internal */
  get callbackTimeoutPolicy(): TimeoutPolicy | undefined {
    return this.env.callbackTimeoutPolicy;
  }

  /** @internal Re-reads clock, metrics and logger (the runner attaches them after binding). */
  resolveEnv(): { clock: Clock; metrics: Metrics; logger: Logger } {
    return this.env.resolve();
  }

  get metricTags(): Tags {
    return this.env.metricTags;
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
    return this.slots.running;
  }

  /** True once `stop()` or `kill()` began: `startRoute` rejects with `ROUTE_STOPPED`. */
  get stopped(): boolean {
    return !this.accepting;
  }

  /** @internal Called by {@link RunnerContext}: binds the route to its context (once). */
  bind(context: RunnerContext<any>): void {
    this.env.bind(context);
    this.slots.bind(context);
  }

  /** @internal A short unique id for the next worker. */
  nextCallId(): string {
    return nextId();
  }

  /** @internal */
  callCallback(kind: CallbackKind, event: unknown, ctx: WorkerContext<any>): unknown {
    return this.callbackRunner!.call(kind, event, ctx);
  }

  /** @internal Gives back the task's worker slot (once: by its worker, or by a kill). */
  releaseSlot(task: Task): void {
    this.slots.release(task);
  }

  /**
   * Starts the route on its own (without a {@link Runner}): sets up and starts its dependencies,
   * then its entrypoints. Idempotent.
   */
  async start(): Promise<void> {
    if (this.started) return;
    if (!this.accepting) throw new RouteStoppedError(this.env.label);
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
    if (!this.env.bound) this.bindDefault();
    await this.intake.start();
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
    const label = this.env.label;
    if (!this.accepting) return Promise.reject(new RouteStoppedError(label));
    if (!this.env.bound) this.bindDefault();
    const task = new Task(entryId, options?.entrypoint, meta ?? {}, options?.signal);
    if (options?.deadline !== undefined) task.deadline = options.deadline;
    if (options?.onAbort !== undefined) options.onAbort(task.abortFn);
    this.tasks.add(task);
    task.settle = this.tasks.settle;
    task.route = this;
    let running: Outcome<R> | Promise<Outcome<R>>;
    try {
      running = routeTracer.enabled
        ? this.executeTraced(task, args, options)
        : this.execute(task, args);
    } catch (error) {
      task.fail(error);
      return Promise.resolve(task.outcome as Outcome<R>);
    }
    // A message whose steps all stayed synchronous settles here: one resolved promise, none per step.
    if (!isThenable(running)) {
      task.finish(running);
      return Promise.resolve(task.outcome as Outcome<R>);
    }
    // settled already (killed while its synchronous part ran)
    if (task.done) return Promise.resolve(task.outcome as Outcome<R>);
    const outcome = new Promise<Outcome>(resolve => (task.resolve = resolve));
    running.then(
      done => task.finish(done),
      error => task.fail(error),
    );
    return outcome as Promise<Outcome<R>>;
  }

  /** {@link execute} inside the message's span (apart: keeps `startRoute` small enough to inline). */
  private executeTraced(
    task: Task,
    args: In,
    options: StartRouteOptions | undefined,
  ): Outcome<R> | Promise<Outcome<R>> {
    const label = this.env.label;
    const span = routeTracer.start(`route ${label}`, {
      kind: options?.spanKind ?? 'internal',
      parent: options?.traceContext,
      attributes: { 'x.route': label, 'x.entrypoint': options?.entrypoint?.name },
    });
    task.span = span;
    // The target runs inside the span: the spans it starts (HTTP calls, jobs) are its children.
    return span ? span.run(() => this.execute(task, args)) : this.execute(task, args);
  }

  /** The steps of one message: the outcome, or a promise of it once a step went asynchronous. */
  private execute(task: Task, args: In): Outcome<R> | Promise<Outcome<R>> {
    const made = this.getWorkerInstance(args, task.meta, task);
    return isThenable(made)
      ? Promise.resolve(made).then(worker => this.runWorkerStep(task, worker))
      : this.runWorkerStep(task, made);
  }

  /** `runWorker`, or its inline form (no promise while the worker stays synchronous) unless overridden. */
  private runWorkerStep(
    task: Task,
    worker: RouteWorker<In, Out, R>,
  ): Outcome<R> | Promise<Outcome<R>> {
    return this.inlineRunWorker ? this.runWorkerInline(task, worker) : this.runWorker(task, worker);
  }

  private runWorkerInline(
    delivery: Delivery,
    worker: RouteWorker<In, Out, R>,
  ): Outcome<R> | Promise<Outcome<R>> {
    const spawned = this.inlineSpawnWorker
      ? this.slots.spawnInline(worker)
      : this.spawnWorker(worker);
    return isThenable(spawned)
      ? spawned.then(finished => this.afterWorker(delivery, finished))
      : this.afterWorker(delivery, spawned);
  }

  /** Retries the finished worker if its backoff allows, then hands it to `handleFinishedWorker`. */
  private afterWorker(
    delivery: Delivery,
    finished: RouteWorker<In, Out, R>,
  ): Outcome<R> | Promise<Outcome<R>> {
    if (
      this.backoff !== undefined &&
      finished.failed &&
      finished.ran &&
      !isXError(finished.error, 'DEADLINE_EXCEEDED')
    )
      return this.retryAndFinish(delivery, finished);
    return this.handleFinishedWorker(delivery, finished);
  }

  /** @internal An overridden step threw: the message is settled, never lost. */
  internalFailure(task: Task, error: unknown): Outcome<R> {
    if (isXError(error, 'CANCELLED')) return cancelledOutcome(task, error);
    this.logger.error({ err: error, route: this.env.label }, 'route step failed');
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
    const worker = new this.workerClass(this, {
      args,
      meta,
      delivery,
      attempt: retryCountOf(meta),
    }) as RouteWorker<In, Out, R>;
    // untimed while nothing takes its timing (a listener may still come before it runs)
    if (this.privateWorkers && !this.env.histograms && !this.env.events.active)
      worker.timed = false;
    return worker;
  }

  /**
   * ≙ `run_worker`: spawns the worker; if it failed and the backoff can retry, runs the backoff;
   * then hands the result to `handleFinishedWorker`.
   */
  runWorker(delivery: Delivery, worker: RouteWorker<In, Out, R>): Promise<Outcome<R>> {
    return this.spawnWorker(worker).then(finished => this.afterWorker(delivery, finished));
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
    return this.retries!.run(this, delivery as Task, worker);
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
    const outcome = workerOutcome(delivery, finished, this.backoff);
    return this.callbackRunner === undefined || !runsCallbacks(outcome)
      ? outcome
      : this.callbackRunner.settle(this, finished, outcome);
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
    return this.callbackRunner!.start(this.env, this, original, kind, event);
  }

  /**
   * ≙ the runner's `spawn_worker`: takes a slot (per-route limit, then the context budget), runs
   * the worker and records the metrics. A worker that gets no slot comes back failed without
   * running (`BULKHEAD_FULL` when the queue is full, `CANCELLED` when handed back at stop).
   */
  spawnWorker(worker: RouteWorker<In, Out, R>): Promise<RouteWorker<In, Out, R>> {
    return this.slots.spawn(worker);
  }

  // ---- stop / drain -----------------------------------------------------------------------

  /** @internal Stops taking work and stops the entrypoints' intake; returns what they handed back. */
  stopIntake(): Promise<EntryRef[]> {
    this.accepting = false;
    return this.intake.stop();
  }

  /** @internal Hands back work that has not started (or sleeps between retries). */
  handBack(): { returned: EntryRef[]; draining: number } {
    return this.tasks.handBack();
  }

  /** @internal Resolves true once no work is left, false when `timeoutMs` passed first. */
  waitDrained(timeoutMs: number): Promise<boolean> {
    return this.tasks.drained(this.clock, timeoutMs);
  }

  /** @internal Kills every task left: aborts its signal, frees its slot, settles it `cancelled`. */
  killAll(reason: CancelledError): EntryRef[] {
    return this.tasks.killAll(reason, task => this.slots.release(task));
  }

  /** @internal Stops the dependencies (unless a runner owns them) and closes the entrypoints. */
  async closeAll(stopDeps: boolean, kill = false): Promise<void> {
    await this.intake.close();
    if (stopDeps && this.depsStarted)
      await stopDependencies(
        this.dependencyList.map(([, d]) => d),
        this.logger,
        kill,
      );
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
        : this.killAll(new CancelledError(`route ${this.env.label}: drain timed out`, true));
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
    reason: unknown = new CancelledError(`route ${this.env.label} killed`, true),
  ): Promise<void> {
    this.accepting = false;
    const error = isXError(reason, 'CANCELLED')
      ? (reason as CancelledError)
      : new CancelledError(`route ${this.env.label} killed`, true, { cause: reason });
    await this.intake.stop(false);
    this.killAll(error);
    await this.closeAll(true, true);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

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
