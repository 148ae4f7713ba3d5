import type { Dispatcher, DispatcherEvent } from '@x/dispatcher';
import { RetryBudget, type Logger, type Metrics } from '@x/resilience';
import { Shards, type HostStats } from '@x/rest-client';
import type { ResilienceConfig, ShardsConfig } from './config.js';
import type { EventLog } from './eventLog.js';
import { shardsOf } from './shardPlan.js';

/** One catalog instance as the search client sees it. */
export interface CatalogHost {
  readonly instance: string;
  readonly origin: string;
  readonly shards: readonly number[];
}

/** A catalog host with its `@x/rest-client` health (passive ejection) and load. */
export interface CatalogHostState extends CatalogHost {
  readonly stats: HostStats | undefined;
}

export interface CatalogShardsDeps {
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly events: EventLog;
}

const RETIRE_AFTER_MS = 3_000;

/**
 * Keeps an `@x/rest-client` `Shards` client in step with the catalog instances the dispatcher
 * runs. Instance `i` holds the keys of `shardsOf(i)`; its origin is its child process's
 * `http://127.0.0.1:<port>`.
 *
 * A killed instance stays in the client with its old origin until the dispatcher restarts it:
 * `multicast` re-covers its keys from the replicas, and passive health ejects it after
 * `ejectAfterFailures` failures (the dashboard shows it). A restarted instance listens on a new
 * port, so the client is rebuilt (the `Shards` host list is fixed at construction); the old one
 * is closed a few seconds later, once its calls are done. The retry budget is shared by every
 * generation of the client.
 */
export class CatalogShards {
  /** Shared by every client generation: the dashboard shows its balance. */
  readonly budget: RetryBudget;
  private client: Shards<number> | undefined;
  private hosts = new Map<string, CatalogHost>();
  private readonly retiring = new Set<{ client: Shards<number>; timer: NodeJS.Timeout }>();
  /** Tries of closed client generations, by instance id (a rebuild must not reset the counts). */
  private readonly carried = new Map<string, number>();
  /** Instance id of each origin any generation used (a retired client's origin may be gone). */
  private readonly instanceByOrigin = new Map<string, string>();
  private readonly unsubscribe: () => void;
  private closed = false;

  constructor(
    private readonly dispatcher: Dispatcher,
    private readonly config: ShardsConfig,
    private readonly resilience: ResilienceConfig['search'],
    private readonly deps: CatalogShardsDeps,
  ) {
    this.budget = new RetryBudget({ percentCanRetry: resilience.retryBudgetPercent / 100 });
    this.unsubscribe = dispatcher.on(event => this.onDispatcherEvent(event));
    this.refresh();
  }

  private onDispatcherEvent(event: DispatcherEvent): void {
    if (!('module' in event) || event.module !== this.config.module) return;
    if ('version' in event && event.version !== this.config.version) return;
    this.refresh();
  }

  /** Re-reads the instances; rebuilds the client when an origin or the instance set changed. */
  refresh(): void {
    if (this.closed) return;
    const next = new Map<string, CatalogHost>();
    for (const info of this.dispatcher.getInstances(this.config.module, this.config.version)) {
      if (info.state === 'stopped' || info.state === 'draining') continue;
      const origin = info.state === 'ready' ? info.origin : this.hosts.get(info.id)?.origin;
      if (origin === undefined) continue;
      next.set(info.id, {
        instance: info.id,
        origin,
        shards: shardsOf(Number(info.id), this.config.count, this.config.replicas),
      });
    }
    const same =
      next.size === this.hosts.size &&
      [...next].every(([id, host]) => this.hosts.get(id)?.origin === host.origin);
    if (same && this.client) return;
    this.hosts = next;
    for (const host of next.values()) this.instanceByOrigin.set(host.origin, host.instance);
    const previous = this.client;
    this.client = next.size > 0 ? this.build(next) : undefined;
    if (previous) this.retire(previous);
  }

  private build(hosts: ReadonlyMap<string, CatalogHost>): Shards<number> {
    const { resilience, deps } = this;
    const client = new Shards<number>(
      Object.fromEntries([...hosts.values()].map(h => [h.origin, h.shards])),
      {
        timeout: { total: resilience.timeoutMs, perTry: resilience.perTryTimeoutMs },
        retry: { maxRetries: 2, budget: this.budget },
        health: {
          consecutiveFailures: resilience.ejectAfterFailures,
          baseEjectionMs: resilience.ejectionMs,
          maxEjectedPercent: 50,
        },
        connections: 32,
        metrics: deps.metrics,
        logger: deps.logger,
      },
    );
    client.resources.onEvent(event => {
      const name = `catalog/${this.instanceOf(event.host) ?? event.host}`;
      if (event.type === 'eject')
        deps.events.add(
          'search',
          'warn',
          `${name} ejected after ${event.consecutiveFailures} failures for ${event.ejectionMs} ms`,
        );
      else if (event.type === 'readmit')
        deps.events.add('search', 'good', `${name} readmitted (${event.via})`);
    });
    return client;
  }

  private retire(client: Shards<number>): void {
    const entry = {
      client,
      timer: setTimeout(() => {
        this.retiring.delete(entry);
        this.carry(client);
        void client.close();
      }, RETIRE_AFTER_MS),
    };
    entry.timer.unref();
    this.retiring.add(entry);
  }

  /** Keeps the tries of a client generation that is being closed. */
  private carry(client: Shards<number>): void {
    for (const stats of client.resources.stats().values()) {
      const instance = this.instanceByOrigin.get(stats.host);
      if (instance !== undefined)
        this.carried.set(instance, (this.carried.get(instance) ?? 0) + stats.requests);
    }
  }

  /**
   * Requests an instance served for the search client (`@x/rest-client` tries, by host), over
   * every client generation: the traffic that reaches catalog instances without the front door.
   */
  served(instance: string): number {
    let total = this.carried.get(instance) ?? 0;
    const clients = [
      ...[...this.retiring].map(e => e.client),
      ...(this.client ? [this.client] : []),
    ];
    for (const client of clients)
      for (const stats of client.resources.stats().values())
        if (this.instanceByOrigin.get(stats.host) === instance) total += stats.requests;
    return total;
  }

  /** The current client, or undefined when no catalog instance has ever been ready. */
  current(): Shards<number> | undefined {
    return this.client;
  }

  /** Every shard key. */
  keys(): number[] {
    return Array.from({ length: this.config.count }, (_, i) => i);
  }

  /** The instance id behind an origin. */
  instanceOf(origin: string): string | undefined {
    for (const host of this.hosts.values()) if (host.origin === origin) return host.instance;
    return undefined;
  }

  /** Hosts with their passive-health state, for the dashboard. */
  snapshot(): CatalogHostState[] {
    const client = this.client;
    return [...this.hosts.values()].map(host => ({
      ...host,
      stats: client?.resources.has(host.origin)
        ? client.resources.hostStats(host.origin)
        : undefined,
    }));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.unsubscribe();
    const closing = [...this.retiring].map(entry => {
      clearTimeout(entry.timer);
      return entry.client.close();
    });
    this.retiring.clear();
    if (this.client) closing.push(this.client.close());
    this.client = undefined;
    await Promise.allSettled(closing);
  }
}
