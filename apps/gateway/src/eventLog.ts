/** Severity of a {@link GatewayEvent}: the dashboard colours it. */
export type EventLevel = 'info' | 'good' | 'warn' | 'error';

/** One line of the dashboard's "recent events". */
export interface GatewayEvent {
  readonly seq: number;
  /** Epoch ms. */
  readonly at: number;
  readonly level: EventLevel;
  /** Which part reported it: `dispatcher`, `search`, `orders`, `reports`, `jobs`, `gateway`. */
  readonly source: string;
  readonly message: string;
}

/**
 * The last `capacity` events of every package, in one bounded ring, with live subscribers (the
 * server-sent events stream). Old events are dropped; listeners are called synchronously.
 */
export class EventLog {
  private readonly ring: GatewayEvent[] = [];
  private readonly listeners = new Set<(event: GatewayEvent) => void>();
  private seq = 0;

  constructor(private readonly capacity = 200) {}

  add(source: string, level: EventLevel, message: string): GatewayEvent {
    const event: GatewayEvent = { seq: ++this.seq, at: Date.now(), level, source, message };
    this.ring.push(event);
    if (this.ring.length > this.capacity) this.ring.shift();
    for (const listener of this.listeners) listener(event);
    return event;
  }

  /** The most recent events, newest last. */
  recent(limit = this.capacity): GatewayEvent[] {
    return this.ring.slice(-limit);
  }

  /** Calls `listener` for every new event; returns the unsubscribe function. */
  subscribe(listener: (event: GatewayEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
