import type { Disposer } from '@x/resilience';
import type { RestClientEvent, RestClientEventOf, RestClientEventType } from '../events.js';
import type { Engine } from './engine.js';

/** What `Resource` and `Resources` expose the same way over their {@link Engine}: events and closing. */
export abstract class EngineClient implements AsyncDisposable {
  /** @internal */
  protected abstract readonly engine: Engine;

  /**
   * Subscribes to one type of event (`retry`, `replay`, `hedge`; with several hosts also `eject`,
   * `readmit`, `probeFailed`); returns the unsubscribe function.
   */
  on<K extends RestClientEventType>(
    type: K,
    listener: (event: RestClientEventOf<K>) => void,
  ): Disposer {
    return this.engine.on(type, listener);
  }

  /** Subscribes to every event. */
  onEvent(listener: (event: RestClientEvent) => void): Disposer {
    return this.engine.events.on(listener);
  }

  /** True once `close()` or `destroy()` was called. */
  get closed(): boolean {
    return this.engine.closed;
  }

  /** Refuses new calls, lets running ones finish (each bounded by its deadline), closes the connections. */
  close(): Promise<void> {
    return this.engine.close();
  }

  /** Closes at once: running calls fail with `CLOSED`. */
  destroy(): Promise<void> {
    return this.engine.destroy();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
