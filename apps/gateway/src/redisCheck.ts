import { Redis } from 'ioredis';
import { GatewayError } from './gatewayError.js';

/**
 * Fails fast with a clear message when Redis cannot be reached, instead of letting the durable
 * stores retry forever at start: one PING with a 2 s connect timeout and no retries.
 */
export async function checkRedis(url: string): Promise<void> {
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
    await client.connect();
    await client.ping();
  } catch (error) {
    throw new GatewayError(
      'REDIS_UNAVAILABLE',
      503,
      `cannot reach Redis at ${redact(url)}: ${(cause ?? (error as Error))?.message ?? String(error)} (unset REDIS_URL to run in memory)`,
      { cause: error },
    );
  } finally {
    client.disconnect();
  }
}

/** The URL without its password. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}
