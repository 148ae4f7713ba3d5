import type { Dispatcher } from '@x/dispatcher';
import type { Logger, Metrics } from '@x/resilience';
import {
  createWorkerConnection,
  type CallOptions,
  type EndpointStats,
  type WorkerConnection,
} from '@x/worker-rpc';
import type { WorkerEndpointsConfig } from './config.js';
import type { EventLog } from './eventLog.js';
import type { Report, ReportRequest, ReportsApi, ReportStats } from './reportsApi.js';

/** A reports worker endpoint with its `@x/worker-rpc` stats and, when it answered, its own counters. */
export interface ReportsEndpointState extends EndpointStats {
  readonly worker: ReportStats | undefined;
}

/**
 * The `@x/worker-rpc` connection to the reports workers over ZeroMQ. With `workers.reports.module`
 * the endpoints follow the dispatcher: every ready instance of that version is
 * `tcp://127.0.0.1:<its PORT>`, added when it becomes ready and removed when it dies or stops (a
 * restarted instance has a new port). With `addresses` the endpoints are fixed.
 *
 * Each call has a deadline (`timeoutMs`) and an abort signal: when the HTTP client goes away the
 * route aborts the signal and worker-rpc sends CANCEL, so the worker stops working on it.
 */
export class ReportsClient {
  readonly connection: WorkerConnection<ReportsApi>;
  /** One small connection per endpoint, only for `reports.stats` (the main one balances calls). */
  private readonly probes = new Map<string, WorkerConnection<ReportsApi>>();
  private readonly latest = new Map<string, ReportStats>();
  /** Calls of endpoints that left the connection, by instance id (or address when fixed). */
  private readonly carried = new Map<string, number>();
  /** Instance id behind each address the connection used (`workers.reports.module`). */
  private readonly instanceByAddress = new Map<string, string>();
  private readonly unsubscribe: () => void;

  constructor(
    private readonly dispatcher: Dispatcher,
    private readonly config: WorkerEndpointsConfig,
    deps: { readonly metrics: Metrics; readonly logger: Logger; readonly events: EventLog },
  ) {
    this.connection = createWorkerConnection<ReportsApi>({
      addresses: config.kind === 'addresses' ? config.addresses : [],
      transport: 'zmq',
      metrics: deps.metrics,
      logger: deps.logger,
    });
    this.connection.onEvent(event => {
      if (event.type === 'endpoint' && (event.state === 'up' || event.state === 'down'))
        deps.events.add(
          'reports',
          event.state === 'up' ? 'good' : 'warn',
          `worker ${event.address} is ${event.state}`,
        );
    });
    this.unsubscribe =
      config.kind === 'module'
        ? dispatcher.on(event => {
            if ('module' in event && event.module === config.module) void this.sync();
          })
        : () => {};
    void this.sync();
  }

  /** The addresses the connection should use now. */
  addresses(): string[] {
    if (this.config.kind === 'addresses') return [...this.config.addresses];
    return this.dispatcher
      .getInstances(this.config.module, this.config.version)
      .filter(i => i.state === 'ready' && i.port !== undefined)
      .map(i => `tcp://127.0.0.1:${i.port}`);
  }

  private async sync(): Promise<void> {
    const wanted = this.addresses();
    if (this.config.kind === 'module')
      for (const i of this.dispatcher.getInstances(this.config.module, this.config.version))
        if (i.state === 'ready' && i.port !== undefined)
          this.instanceByAddress.set(`tcp://127.0.0.1:${i.port}`, i.id);
    for (const e of this.connection.endpoints())
      if (!wanted.includes(e.address)) {
        const key = this.instanceByAddress.get(e.address) ?? e.address;
        this.carried.set(key, (this.carried.get(key) ?? 0) + e.requests);
      }
    for (const [address, probe] of this.probes)
      if (!wanted.includes(address)) {
        this.probes.delete(address);
        this.latest.delete(address);
        void probe.close();
      }
    await this.connection.setConnections(wanted, { drainMs: 0 }).catch(() => {});
  }

  /** Generates a report within `timeoutMs`; `signal` cancels it on the worker too. */
  generate(params: ReportRequest, options: CallOptions): Promise<Report> {
    return this.connection.invoke('reports.generate', params, options);
  }

  /** Asks every endpoint for its counters (1 s deadline each; silent ones are left out). */
  async refreshStats(): Promise<void> {
    await Promise.all(
      this.addresses().map(async address => {
        let probe = this.probes.get(address);
        if (!probe) {
          probe = createWorkerConnection<ReportsApi>({ addresses: [address], transport: 'zmq' });
          this.probes.set(address, probe);
        }
        try {
          this.latest.set(
            address,
            await probe.invoke('reports.stats', undefined, { timeoutMs: 1_000 }),
          );
        } catch {
          this.latest.delete(address);
        }
      }),
    );
  }

  /** Endpoint stats plus the last counters each worker reported. */
  snapshot(): ReportsEndpointState[] {
    return this.connection.endpoints().map(e => ({ ...e, worker: this.latest.get(e.address) }));
  }

  /**
   * Calls a worker instance served over the connection (`@x/worker-rpc` endpoint stats), over
   * every address it had: the traffic that reaches workers without the front door.
   */
  served(instance: string): number {
    let total = this.carried.get(instance) ?? 0;
    for (const e of this.connection.endpoints())
      if ((this.instanceByAddress.get(e.address) ?? e.address) === instance) total += e.requests;
    return total;
  }

  /** Counters of all workers together (from the last {@link refreshStats}). */
  totals(): Omit<ReportStats, 'instance' | 'pid'> {
    const total = { running: 0, generated: 0, cancelled: 0, timedOut: 0 };
    for (const s of this.latest.values()) {
      total.running += s.running;
      total.generated += s.generated;
      total.cancelled += s.cancelled;
      total.timedOut += s.timedOut;
    }
    return total;
  }

  async close(drainMs = 0): Promise<void> {
    this.unsubscribe();
    const probes = [...this.probes.values()];
    this.probes.clear();
    await Promise.allSettled([this.connection.close({ drainMs }), ...probes.map(p => p.close())]);
  }
}
