import type { Dispatcher, DispatcherEvent } from '@x/dispatcher';
import { RetryBudget, type Logger, type Metrics, type RetryBudgetOptions } from '@x/resilience';
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
  /** Makes the retry budget (a fleet-wide one with Redis). Default: this process's own. */
  readonly retryBudget?: (name: string, options: RetryBudgetOptions) => RetryBudget;
}

/**
 * Keeps one `@x/rest-client` `Shards` client in step with the catalog instances the dispatcher
 * runs. Instance `i` holds the keys of `shardsOf(i)`; its origin is its child process's
 * `http://127.0.0.1:<port>`.
 *
 * A killed instance stays in the client with its old origin until the dispatcher restarts it:
 * `multicast` re-covers its keys from the replicas, and passive health ejects it after
 * `ejectAfterFailures` failures (the dashboard shows it). A restarted instance listens on a new
 * port: `Shards.replace` moves the host to it, keeping its health state, counters and place (no
 * new client); instances that appear or go away are `Shards.add`ed and `Shards.remove`d.
 */
export class CatalogShards {
  /** The client's retry budget: the dashboard shows its balance. */
  readonly budget: RetryBudget;
  private readonly client: Shards<number>;
  private hosts = new Map<string, CatalogHost>();
  /** Tries of instances removed from the client, by instance id (a removal must not lose them). */
  private readonly carried = new Map<string, number>();
  private readonly unsubscribe: () => void;
  private closed = false;

  constructor(
    private readonly dispatcher: Dispatcher,
    private readonly config: ShardsConfig,
    resilience: ResilienceConfig['search'],
    private readonly deps: CatalogShardsDeps,
  ) {
    const budget = { percentCanRetry: resilience.retryBudgetPercent / 100 };
    this.budget = deps.retryBudget?.('catalog', budget) ?? new RetryBudget(budget);
    this.client = new Shards<number>(
      {},
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
    this.client.resources.onEvent(event => {
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
    this.unsubscribe = dispatcher.on(event => this.onDispatcherEvent(event));
    this.refresh();
  }

  private onDispatcherEvent(event: DispatcherEvent): void {
    if (!('module' in event) || event.module !== this.config.module) return;
    if ('version' in event && event.version !== this.config.version) return;
    this.refresh();
  }

  /**
   * Re-reads the instances and changes the client's membership to match: a new instance is
   * added, a moved one (new port) replaced, a stopped one removed.
   */
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
    const client = this.client;
    for (const [id, host] of this.hosts) {
      if (next.has(id)) continue;
      const requests = client.resources.hostStats(host.origin)?.requests ?? 0;
      this.carried.set(id, (this.carried.get(id) ?? 0) + requests);
      this.settle(client.remove(host.origin), `remove catalog/${id}`);
    }
    // origins the client holds now: a move waits while its new origin is still another host's
    // (instances that swapped ports), and a cycle of such moves is broken by remove + add
    const held = new Set([...this.hosts].filter(([id]) => next.has(id)).map(([, h]) => h.origin));
    let moves = [...next.values()].filter(
      host =>
        this.hosts.has(host.instance) && this.hosts.get(host.instance)!.origin !== host.origin,
    );
    while (moves.length > 0) {
      const free = moves.filter(host => !held.has(host.origin));
      for (const host of free.length > 0 ? free : [moves[0]!]) {
        const from = this.hosts.get(host.instance)!.origin;
        if (free.length > 0)
          this.settle(client.replace(from, host.origin), `move catalog/${host.instance}`);
        else {
          this.settle(client.remove(from), `move catalog/${host.instance}`);
          client.add(host.origin, host.shards);
        }
        held.delete(from);
        held.add(host.origin);
        moves = moves.filter(m => m !== host);
      }
    }
    for (const [id, host] of next) if (!this.hosts.has(id)) client.add(host.origin, host.shards);
    this.hosts = next;
  }

  /** A membership change's promise (old connections closing): its failure is logged, not thrown. */
  private settle(change: Promise<boolean>, what: string): void {
    change.catch((error: unknown) => this.deps.logger.warn({ err: error }, `${what} failed`));
  }

  /**
   * Requests an instance served for the search client (`@x/rest-client` tries, by host), kept
   * across restarts and removals: the traffic that reaches catalog instances without the front door.
   */
  served(instance: string): number {
    const host = this.hosts.get(instance);
    const live =
      host === undefined ? 0 : (this.client.resources.hostStats(host.origin)?.requests ?? 0);
    return (this.carried.get(instance) ?? 0) + live;
  }

  /** The client, or undefined while no catalog instance has been ready yet. */
  current(): Shards<number> | undefined {
    return this.hosts.size > 0 ? this.client : undefined;
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
    const { resources } = this.client;
    return [...this.hosts.values()].map(host => ({
      ...host,
      stats: resources.has(host.origin) ? resources.hostStats(host.origin) : undefined,
    }));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    await this.client.close();
  }
}
