import { isXError, redactUrl, timeout } from '@x/resilience';
import { Redis } from 'ioredis';
import { GatewayError } from './gatewayError.js';

/**
 * Fails fast with a clear message when Redis cannot be reached, instead of letting the durable
 * stores retry forever at start: one PING with a 2 s connect timeout and no retries, the whole
 * check bounded by `timeoutMs` (default 5 000 ms: a Redis that accepts connections but never
 * answers fails too).
 */
export async function checkRedis(url: string, timeoutMs = 5_000): Promise<void> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 2_000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  let cause: Error | undefined;
  client.on('error', (error: Error) => (cause ??= error));
  try {
    await timeout(timeoutMs).execute(async () => {
      await client.connect();
      await client.ping();
    });
  } catch (error) {
    const reason = isXError(error, 'TIMEOUT')
      ? `no answer within ${timeoutMs} ms`
      : ((cause ?? (error as Error))?.message ?? String(error));
    throw new GatewayError(
      'REDIS_UNAVAILABLE',
      503,
      `cannot reach Redis at ${redactUrl(url)}: ${reason} (unset REDIS_URL to run in memory)`,
      { cause: error, retryAfterMs: 1_000 },
    );
  } finally {
    client.disconnect();
  }
}
