import { duration, RetryBudget, type RetryBudgetOptions } from '@x/resilience';
import { nonEmptyString, redisClient } from './internal/options.js';
import { isReady, withTimeout, type RedisClient } from './internal/redis.js';

/** Options of {@link redisRetryBudget}. */
export interface RedisRetryBudgetOptions extends RetryBudgetOptions {
  /** The ioredis client (shared with the rest of the process; the budget never closes it). */
  readonly redis: RedisClient;
  /** Name of the budget: every process using the same key shares one budget (e.g. the dependency). */
  readonly key: string;
  /** Prefix of the Redis keys. Default `'x:rb'`. */
  readonly keyPrefix?: string;
  /** How often the local view is synced with Redis (counts sent, fleet totals read). Default 100 ms. */
  readonly refreshMs?: number;
  /** The local view is trusted this long after its last sync; then the process's own budget decides. Default 1 000 ms. */
  readonly staleAfterMs?: number;
  /** Longest wait for one sync. Default 500 ms. */
  readonly timeoutMs?: number;
  /** Told about Redis errors (they never reach a call). Default: ignored. */
  readonly onError?: (error: Error) => void;
}

const SLICES = 10;

/**
 * A {@link RetryBudget} shared by every process on one Redis: `percentCanRetry` of the fleet's
 * calls plus `minRetriesPerSec` (for the whole fleet) may be retried. Calls and retries are
 * counted in Redis in ten time slices over `ttlMs` (HINCRBY + PEXPIRE in one pipeline). The call
 * path never waits for Redis: `deposit`/`tryWithdraw` stay synchronous and decide on a local view
 * that a timer syncs every `refreshMs`. When that view is older than `staleAfterMs` (Redis down or
 * slow), the process's own in-memory budget (same options) decides, as a plain `RetryBudget`.
 * Being a `RetryBudget`, it goes wherever one does (`faultTolerant({ retryBudget })`,
 * `retry({ budget })`, rest-client, worker-rpc).
 */
export class RedisRetryBudget extends RetryBudget {
  readonly key: string;
  private readonly redis: RedisClient;
  private readonly prefix: string;
  private readonly percent: number;
  private readonly fleetReserve: number;
  private readonly windowSliceMs: number;
  private readonly ttlMs: number;
  private readonly staleAfterMs: number;
  private readonly timeoutMs: number;
  private readonly onError: (error: Error) => void;
  private readonly timer: NodeJS.Timeout;
  private sharedDeposits = 0;
  private sharedWithdrawals = 0;
  private pendingDeposits = 0;
  private pendingWithdrawals = 0;
  private sendingDeposits = 0;
  private sendingWithdrawals = 0;
  private syncing: Promise<boolean> | undefined;
  private queued: Promise<boolean> | undefined;
  private lastSync = -Infinity;

  constructor(options: RedisRetryBudgetOptions) {
    super(options);
    this.redis = redisClient(options.redis, 'redis');
    this.key = nonEmptyString(options.key, 'key');
    this.prefix = nonEmptyString(options.keyPrefix ?? 'x:rb', 'keyPrefix');
    this.percent = options.percentCanRetry ?? 0.1;
    this.ttlMs = options.ttlMs ?? 10_000;
    this.fleetReserve = (options.minRetriesPerSec ?? 10) * (this.ttlMs / 1000);
    this.windowSliceMs = this.ttlMs / SLICES;
    const refreshMs = duration(options.refreshMs ?? 100, 'refreshMs', {
      min: 10,
      allowInfinity: false,
    });
    this.staleAfterMs = duration(options.staleAfterMs ?? 1000, 'staleAfterMs', {
      min: refreshMs,
      allowInfinity: false,
    });
    this.timeoutMs = duration(options.timeoutMs ?? 500, 'timeoutMs', {
      exclusiveMin: true,
      allowInfinity: false,
    });
    this.onError = options.onError ?? (() => {});
    this.timer = setInterval(() => {
      if (!this.syncing) void this.startSync();
    }, refreshMs);
    this.timer.unref();
    void this.startSync();
  }

  /** True while the fleet-wide view is fresh (decisions are shared); false: the local budget decides. */
  get shared(): boolean {
    return Date.now() - this.lastSync <= this.staleAfterMs;
  }

  override deposit(now?: number): void {
    super.deposit(now);
    this.pendingDeposits++;
  }

  override tryWithdraw(now?: number): boolean {
    if (!this.shared) return super.tryWithdraw(now);
    if (this.available() < 1) return false;
    this.pendingWithdrawals++;
    super.tryWithdraw(now); // keep the local budget warm for when Redis goes away
    return true;
  }

  override get balance(): number {
    return this.shared ? Math.max(0, Math.floor(this.available())) : super.balance;
  }

  /**
   * Sends this process's counts and reads the fleet's now (the timer does it every `refreshMs`);
   * resolves false when Redis is not ready or did not answer within `timeoutMs`.
   */
  sync(): Promise<boolean> {
    if (!this.syncing) return this.startSync();
    // One in flight may have left before the latest counts: run another right after it.
    return (this.queued ??= this.syncing.then(() => {
      this.queued = undefined;
      return this.startSync();
    }));
  }

  private startSync(): Promise<boolean> {
    return (this.syncing = this.syncOnce().finally(() => (this.syncing = undefined)));
  }

  private async syncOnce(): Promise<boolean> {
    if (!isReady(this.redis)) {
      // Counts made while Redis is away are not sent later: they would land in the wrong slice.
      this.pendingDeposits = this.pendingWithdrawals = 0;
      return false;
    }
    this.sendingDeposits = this.pendingDeposits;
    this.sendingWithdrawals = this.pendingWithdrawals;
    this.pendingDeposits = this.pendingWithdrawals = 0;
    const slice = Math.floor(Date.now() / this.windowSliceMs);
    const sliceKey = (s: number) => `${this.prefix}:${this.key}:${s}`;
    const pipeline = this.redis.pipeline();
    if (this.sendingDeposits) pipeline.hincrby(sliceKey(slice), 'd', this.sendingDeposits);
    if (this.sendingWithdrawals) pipeline.hincrby(sliceKey(slice), 'w', this.sendingWithdrawals);
    pipeline.pexpire(sliceKey(slice), this.ttlMs + 2 * this.windowSliceMs);
    for (let s = slice - SLICES + 1; s <= slice; s++) pipeline.hmget(sliceKey(s), 'd', 'w');
    try {
      const results = await withTimeout(
        pipeline.exec(),
        this.timeoutMs,
        `retry budget "${this.key}" sync`,
      );
      let deposits = 0;
      let withdrawals = 0;
      for (const [error, value] of (results ?? []).slice(-SLICES)) {
        if (error) throw error;
        const [d, w] = value as [string | null, string | null];
        deposits += Number(d ?? 0);
        withdrawals += Number(w ?? 0);
      }
      this.sharedDeposits = deposits;
      this.sharedWithdrawals = withdrawals;
      this.lastSync = Date.now();
      return true;
    } catch (error) {
      try {
        this.onError(error instanceof Error ? error : new Error(String(error)));
      } catch {
        // never reaches a call
      }
      return false;
    } finally {
      this.sendingDeposits = this.sendingWithdrawals = 0;
    }
  }

  /** Stops syncing (the budget then decides locally). */
  close(): void {
    clearInterval(this.timer);
    this.lastSync = -Infinity;
  }

  /** Retries left fleet-wide: the last synced totals plus this process's counts not yet in them. */
  private available(): number {
    const deposits = this.sharedDeposits + this.pendingDeposits + this.sendingDeposits;
    const withdrawals = this.sharedWithdrawals + this.pendingWithdrawals + this.sendingWithdrawals;
    return deposits * this.percent + this.fleetReserve - withdrawals;
  }
}

/** A {@link RedisRetryBudget}. */
export function redisRetryBudget(options: RedisRetryBudgetOptions): RedisRetryBudget {
  return new RedisRetryBudget(options);
}
