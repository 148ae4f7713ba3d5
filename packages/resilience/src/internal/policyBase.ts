import { systemClock, type Clock } from '../clock.js';
import { Emitter } from '../emitter.js';
import { AbortedError } from '../errors.js';
import type { Policy, PolicyContext, PolicyEvent, Task } from '../policy.js';
import { Scope } from './scope.js';

/** Common plumbing of every policy: the event emitter and the public `execute`. */
export abstract class PolicyBase implements Policy {
  protected readonly events = new Emitter<PolicyEvent>();
  readonly onEvent = this.events.on;

  constructor(readonly clock: Clock = systemClock) {}

  /** Listeners subscribed to {@link onEvent}. */
  get listenerCount(): number {
    return this.events.size;
  }

  execute<T>(task: Task<T>, signal?: AbortSignal): Promise<T> {
    return executeRoot(this, task, signal, this.clock);
  }

  abstract run<T>(task: Task<T>, context: PolicyContext): Promise<T>;
}

/**
 * Runs `policy` at the top of a call: a root scope bound to the caller's signal; when that signal
 * aborts, the call rejects with `ABORTED` at once even if the work ignores the signal.
 */
export function executeRoot<T>(
  policy: Policy,
  task: Task<T>,
  signal: AbortSignal | undefined,
  clock: Clock,
): Promise<T> {
  if (signal?.aborted) return Promise.reject(new AbortedError({ cause: signal.reason }));
  const scope = new Scope(clock, undefined, signal);
  const running = policy.run(task, scope);
  return signal ? abortable(running, scope, signal) : running;
}

/** Settles with `running`, or rejects with `ABORTED` as soon as `signal` aborts. */
export function abortable<T>(running: Promise<T>, scope: Scope, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      const error = new AbortedError({ cause: signal.reason });
      scope.abort(error); // reaches signals derived from the scope, even ones linked after this listener
      scope.dispose();
      reject(error);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    running.then(
      value => {
        signal.removeEventListener('abort', onAbort);
        scope.dispose();
        resolve(value);
      },
      error => {
        signal.removeEventListener('abort', onAbort);
        scope.dispose();
        reject(error);
      },
    );
  });
}

/** The internal scope behind a context (or a new one wrapping a foreign context). */
export function asScope(context: PolicyContext, clock: Clock): Scope {
  if (context instanceof Scope) return context;
  const scope = new Scope(clock, undefined, context.signal);
  scope.attempt = context.attempt;
  scope.deadline = context.deadline;
  scope.endpoint = context.endpoint;
  return scope;
}
