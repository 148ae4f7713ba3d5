/** Stops a subscription. */
export type Disposer = () => void;

/** A typed event source: subscribe a listener, get back a function that unsubscribes it. */
export type Listen<T> = (listener: (event: T) => void) => Disposer;

let changes = 0;

/**
 * A number that changes whenever any {@link Emitter} gains or loses a listener: hot paths that
 * skip building events nobody reads cache "who listens" against it.
 */
export function listenerChanges(): number {
  return changes;
}

/**
 * Minimal typed event emitter (cockatiel style): no string event names, no MaxListeners
 * warnings, and `emit` costs one branch when nobody listens.
 */
export class Emitter<T> {
  private listeners: Array<(event: T) => void> = [];

  /** True when at least one listener is subscribed. */
  get active(): boolean {
    return this.listeners.length > 0;
  }

  /** Number of listeners subscribed. */
  get size(): number {
    return this.listeners.length;
  }

  /** Subscribes `listener`; call the returned function to unsubscribe. */
  readonly on: Listen<T> = listener => {
    this.listeners = [...this.listeners, listener];
    changes++;
    return () => {
      const before = this.listeners.length;
      this.listeners = this.listeners.filter(l => l !== listener);
      if (this.listeners.length !== before) changes++;
    };
  };

  emit(event: T): void {
    const listeners = this.listeners;
    for (let i = 0; i < listeners.length; i++) {
      try {
        listeners[i]!(event);
      } catch {
        // a listener's failure never breaks the call that emitted the event
      }
    }
  }
}
