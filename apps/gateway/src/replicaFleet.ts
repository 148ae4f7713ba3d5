import { hostname } from 'node:os';
import { timeout } from '@x/resilience';
import { Redis } from 'ioredis';
import type { GatewayEvent } from './eventLog.js';
import type { Pino } from './logger.js';

/** What one replica publishes about itself (a card on every replica's dashboard). */
export interface ReplicaSummary {
  readonly id: string;
  readonly hostname: string;
  readonly pid: number;
  /** Where it serves (its own address, behind the load balancer). */
  readonly url: string;
  readonly startedAt: number;
  readonly mode: 'memory' | 'redis';
  readonly ready: boolean;
  readonly draining: boolean;
  /** Instances (child processes and remote URLs) ready / all. */
  readonly instances: { readonly ready: number; readonly total: number };
  /** Requests served and failed (5xx) since start, and in flight now. */
  readonly requests: { readonly total: number; readonly errors: number; readonly inFlight: number };
  /** Report jobs this replica submitted or ran, by state. */
  readonly jobs: Readonly<Record<string, number>>;
  /** Scheduled events in this replica's timer heap. */
  readonly pendingEvents: number;
  /** Orders circuits not closed. */
  readonly openCircuits: number;
  /** Its latest event-log lines (newest last), so every dashboard shows every replica's log. */
  readonly recentEvents: readonly GatewayEvent[];
}

/** A replica as the fleet view shows it. */
export interface ReplicaCard extends ReplicaSummary {
  /** Epoch ms of its last snapshot. */
  readonly lastSeen: number;
  /** Heard from within `staleAfterMs`. */
  readonly alive: boolean;
  /** The replica that built this view. */
  readonly self: boolean;
}

/** Every replica sharing the Redis prefix, as one replica sees them. */
export interface FleetView {
  /** The replica that served this view (also `X-Replica`). */
  readonly servedBy: string;
  /** False without Redis (one process: only itself) or while Redis cannot be read. */
  readonly shared: boolean;
  /** Why the fleet cannot be read right now, if it cannot. */
  readonly error: string | undefined;
  /** Alive first, then by id. */
  readonly replicas: readonly ReplicaCard[];
}

/** Options of {@link ReplicaFleet}. */
export interface ReplicaFleetOptions {
  readonly id: string;
  /** Without a URL the fleet is this process alone. */
  readonly redisUrl: string | undefined;
  /** Redis key prefix (`redis.prefix`). */
  readonly prefix: string;
  readonly publishIntervalMs: number;
  readonly staleAfterMs: number;
  /** This replica's current summary (called once per publish). */
  readonly summary: () => Omit<ReplicaSummary, 'id' | 'hostname' | 'pid'>;
  readonly log: Pino;
}

/** A gone replica stays on the fleet view (as gone) this many `staleAfterMs`, then is dropped. */
const FORGET_AFTER = 12;

/** The default replica id: `hostname:pid`. */
export function defaultReplicaId(): string {
  return `${hostname()}:${process.pid}`;
}

/**
 * The fleet of gateway replicas on one Redis: every `publishIntervalMs` this replica writes its
 * {@link ReplicaSummary} to `<prefix>:replica:<id>` (expiring after `staleAfterMs`, so a killed
 * replica disappears by itself) and its last-seen time to the sorted set `<prefix>:replicas`,
 * then reads every replica back for {@link view}. Redis trouble never fails a request: the view
 * keeps the last replicas read, says `shared: false` and why, and the next tick tries again.
 */
export class ReplicaFleet {
  private readonly client: Redis | undefined;
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly deadline;
  private readonly indexKey: string;
  private cards: ReplicaCard[] = [];
  private error: string | undefined;
  private ticking = false;
  private closed = false;

  constructor(private readonly o: ReplicaFleetOptions) {
    this.indexKey = `${o.prefix}:replicas`;
    this.deadline = timeout(Math.max(200, Math.min(2_000, o.publishIntervalMs)));
    if (!o.redisUrl) return;
    this.client = new Redis(o.redisUrl, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: 2_000,
      retryStrategy: times => Math.min(100 * times, 1_000),
    });
    this.client.on('error', (error: Error) => (this.error = error.message));
    this.timer = setInterval(() => void this.tick(), o.publishIntervalMs);
    this.timer.unref();
    this.client.once('ready', () => void this.tick());
  }

  get id(): string {
    return this.o.id;
  }

  private key(id: string): string {
    return `${this.o.prefix}:replica:${id}`;
  }

  private summary(): ReplicaSummary {
    return { id: this.o.id, hostname: hostname(), pid: process.pid, ...this.o.summary() };
  }

  /** Publishes this replica's summary, then reads the fleet. */
  async tick(): Promise<void> {
    const client = this.client;
    if (!client || this.ticking || this.closed || client.status !== 'ready') return;
    this.ticking = true;
    const now = Date.now();
    try {
      await this.deadline.execute(async () => {
        const { staleAfterMs } = this.o;
        await client
          .multi()
          .set(
            this.key(this.o.id),
            JSON.stringify({ ...this.summary(), lastSeen: now }),
            'PX',
            staleAfterMs,
          )
          .zadd(this.indexKey, now, this.o.id)
          .zremrangebyscore(this.indexKey, '-inf', now - FORGET_AFTER * staleAfterMs)
          .exec();
        const entries = await client.zrange(this.indexKey, 0, -1, 'WITHSCORES');
        const ids: string[] = [];
        const seen = new Map<string, number>();
        for (let i = 0; i + 1 < entries.length; i += 2) {
          ids.push(entries[i]!);
          seen.set(entries[i]!, Number(entries[i + 1]));
        }
        const values = ids.length > 0 ? await client.mget(...ids.map(id => this.key(id))) : [];
        const previous = new Map(this.cards.map(c => [c.id, c]));
        this.cards = ids.map((id, i) => {
          const raw = values[i];
          const lastSeen = seen.get(id) ?? 0;
          const alive = raw != null && now - lastSeen <= staleAfterMs;
          let summary: ReplicaSummary | undefined;
          try {
            summary = raw ? (JSON.parse(raw) as ReplicaSummary) : previous.get(id);
          } catch {
            summary = previous.get(id);
          }
          return { ...(summary ?? goneSummary(id)), id, lastSeen, alive, self: id === this.o.id };
        });
      });
      this.error = undefined;
    } catch (error) {
      const message = (error as Error)?.message ?? String(error);
      if (this.error === undefined)
        this.o.log.warn(
          { err: error },
          'replica fleet: Redis cannot be read; showing this replica only',
        );
      this.error = message;
    } finally {
      this.ticking = false;
    }
  }

  /** The fleet (this replica's card is always current). */
  view(): FleetView {
    const self: ReplicaCard = { ...this.summary(), lastSeen: Date.now(), alive: true, self: true };
    const others = this.cards.filter(c => c.id !== this.o.id);
    const replicas = [self, ...others].sort(
      (a, b) => Number(b.alive) - Number(a.alive) || a.id.localeCompare(b.id),
    );
    return {
      servedBy: this.o.id,
      shared: this.client?.status === 'ready' && this.error === undefined,
      error: this.client ? this.error : undefined,
      replicas,
    };
  }

  /** Stops publishing and removes this replica's entry (a clean stop leaves the fleet at once). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    const client = this.client;
    if (!client) return;
    await this.deadline
      .execute(() => client.multi().del(this.key(this.o.id)).zrem(this.indexKey, this.o.id).exec())
      .catch(() => undefined);
    client.disconnect();
  }
}

function goneSummary(id: string): ReplicaSummary {
  return {
    id,
    hostname: '',
    pid: 0,
    url: '',
    startedAt: 0,
    mode: 'redis',
    ready: false,
    draining: false,
    instances: { ready: 0, total: 0 },
    requests: { total: 0, errors: 0, inFlight: 0 },
    jobs: {},
    pendingEvents: 0,
    openCircuits: 0,
    recentEvents: [],
  };
}
