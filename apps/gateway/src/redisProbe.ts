import { redactUrl, timeout } from '@x/resilience';
import { Redis } from 'ioredis';
import type { Check } from './health.js';

/** Options of {@link RedisProbe}. */
export interface RedisProbeOptions {
  /** Time between two PINGs. Default 1 000 ms. */
  readonly intervalMs?: number;
  /** A PING unanswered after this long counts as down. Default 1 000 ms. */
  readonly timeoutMs?: number;
}

/**
 * Redis for `/readyz`: a connection of its own that PINGs every `intervalMs` under a `timeoutMs`
 * deadline. Down as soon as the connection closes or a PING fails or times out; up again after
 * the next answered PING (it reconnects within 500 ms, so readiness returns within about
 * `intervalMs` + 0.5 s of Redis).
 */
export class RedisProbe {
  private readonly client: Redis;
  private readonly timer: NodeJS.Timeout;
  private readonly deadline;
  private readonly url: string;
  private state: Check;
  private pinging = false;
  private lastError: string | undefined;

  constructor(url: string, options: RedisProbeOptions = {}) {
    const intervalMs = options.intervalMs ?? 1_000;
    this.deadline = timeout(options.timeoutMs ?? 1_000);
    this.url = redactUrl(url);
    this.state = { ok: false, detail: `no answer yet from Redis at ${this.url}` };
    this.client = new Redis(url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: options.timeoutMs ?? 1_000,
      retryStrategy: times => Math.min(100 * times, 500),
    });
    this.client.on('error', (error: Error) => (this.lastError = error.message));
    this.client.on('close', () => this.down('connection closed'));
    this.timer = setInterval(() => void this.ping(), intervalMs);
    this.timer.unref();
    void this.ping();
  }

  /** The readiness check: ok while the last PING was answered in time. */
  check(): Check {
    return this.state;
  }

  private down(reason: string): void {
    this.state = {
      ok: false,
      detail: `Redis at ${this.url} unavailable: ${reason}${this.lastError ? ` (${this.lastError})` : ''}`,
    };
  }

  private async ping(): Promise<void> {
    if (this.pinging) return;
    this.pinging = true;
    const started = performance.now();
    try {
      await this.deadline.execute(() => this.client.ping());
      this.lastError = undefined;
      this.state = {
        ok: true,
        detail: `Redis at ${this.url} answered PING in ${(performance.now() - started).toFixed(1)} ms`,
      };
    } catch (error) {
      this.down((error as Error)?.message ?? String(error));
    } finally {
      this.pinging = false;
    }
  }

  /** Stops pinging and closes the connection. */
  close(): void {
    clearInterval(this.timer);
    this.client.disconnect();
  }
}
