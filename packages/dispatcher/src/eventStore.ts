/** A scheduled event as a store keeps it: serializable, run by a named handler. */
export interface StoredEvent {
  /** `service\u0000eventId` for keyed events, a random id otherwise. */
  readonly id: string;
  readonly service: string | undefined;
  readonly eventId: string | undefined;
  /** When it should run, epoch ms. */
  readonly eta: number;
  /** Name of the handler registered with `eventHandlers` / `registerEventHandler`. */
  readonly handler: string;
  /** JSON-serializable argument of the handler. */
  readonly payload: unknown;
}

/**
 * Where scheduled events live. The scheduler keeps its own timers; the store makes events with a
 * named handler survive a restart. `claim` moves a pending event to "running" under a lease, so
 * two dispatchers sharing a store never both run it, and an event whose runner died is run again
 * once its lease expires (at-least-once).
 */
export interface EventStore {
  /** True when events survive a restart of the process. */
  readonly durable: boolean;
  /** Inserts or replaces a pending event. */
  put(event: StoredEvent): Promise<void>;
  /** Changes the eta of a pending event; false when there is none. */
  reschedule(id: string, eta: number): Promise<boolean>;
  /** Deletes a pending event; false when there is none. */
  remove(id: string): Promise<boolean>;
  /**
   * Takes a pending event whose eta is still `eta`, leased until `leaseUntil`; false when gone or
   * moved. With `again` (the same claim sent again after its answer was lost), an event already
   * leased until exactly `leaseUntil` is true too.
   */
  claim(id: string, eta: number, leaseUntil: number, again?: boolean): Promise<boolean>;
  /** Forgets a claimed event (it ran). */
  complete(id: string): Promise<void>;
  /**
   * Every pending event (at most `limit`, earliest first); claimed events whose lease ended
   * before `now` become pending again first.
   */
  load(now: number, limit: number): Promise<StoredEvent[]>;
  /**
   * Failover of a shared store (optional): pending events whose eta is at or before `before`
   * (at most `limit`, earliest first), after claimed events whose lease ended before `now` became
   * pending again. A dispatcher calls it every few seconds to take over the events of a
   * dispatcher that died (see `eventTakeoverMs`); the claim still lets only one of them run each.
   */
  overdue?(before: number, now: number, limit: number): Promise<StoredEvent[]>;
  /**
   * One event by id (optional): pending (with its eta), running (claimed), or undefined. Lets any
   * process sharing the store answer "is it scheduled?" for events another process added.
   */
  get?(id: string): Promise<(StoredEvent & { readonly state: 'pending' | 'running' }) | undefined>;
  close(): Promise<void>;
}

/**
 * The default store: events live in this process only and are lost on restart (like App
 * Engine's scheduler). One store can be shared by several dispatchers in a process.
 */
export function memoryEventStore(): EventStore {
  const pending = new Map<string, StoredEvent>();
  const leased = new Map<string, { event: StoredEvent; until: number }>();
  return {
    durable: false,
    async put(event) {
      leased.delete(event.id);
      pending.set(event.id, event);
    },
    async reschedule(id, eta) {
      const event = pending.get(id);
      if (!event) return false;
      pending.set(id, { ...event, eta });
      return true;
    },
    async remove(id) {
      return pending.delete(id);
    },
    async claim(id, eta, leaseUntil, again = false) {
      const event = pending.get(id);
      if (!event || event.eta !== eta) return again && leased.get(id)?.until === leaseUntil;
      pending.delete(id);
      leased.set(id, { event, until: leaseUntil });
      return true;
    },
    async complete(id) {
      leased.delete(id);
    },
    async load(now, limit) {
      for (const [id, { event, until }] of leased) {
        if (until <= now) {
          leased.delete(id);
          pending.set(id, { ...event, eta: now });
        }
      }
      return [...pending.values()].sort((a, b) => a.eta - b.eta).slice(0, limit);
    },
    async get(id) {
      const event = pending.get(id);
      if (event) return { ...event, state: 'pending' };
      const running = leased.get(id);
      return running ? { ...running.event, state: 'running' } : undefined;
    },
    async overdue(before, now, limit) {
      const events = await this.load(now, Number.MAX_SAFE_INTEGER);
      return events.filter(event => event.eta <= before).slice(0, limit);
    },
    async close() {},
  };
}
