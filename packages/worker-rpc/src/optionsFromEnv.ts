import { httpTransport } from './httpTransport.js';
import { DEFAULT_TIMEOUT_MS, mimeType } from './internal/optionChecks.js';
import { isHttpAddress, parseAddresses } from './parseAddresses.js';
import type { WorkerConnectionOptions } from './workerConnectionOptions.js';
import { zmqTransport } from './zmqTransport.js';

function envBool(value: string | undefined): boolean {
  return value !== undefined && /^(1|true|yes|on)$/i.test(value.trim());
}

/** Largest `WORKER_TIMEOUT` taken as seconds; a larger one is surely milliseconds. */
const MAX_ENV_TIMEOUT_S = 3_600;

/**
 * `WORKER_TIMEOUT` in seconds, toto's unit (`worker_timeout`, default 10.0; negative = never), or
 * `WORKER_TIMEOUT_MS` in milliseconds. A `WORKER_TIMEOUT` above an hour is refused as a value
 * written in milliseconds, and so is setting both.
 */
function envTimeoutMs(env: Readonly<Record<string, string | undefined>>): number {
  const seconds = env.WORKER_TIMEOUT?.trim();
  const ms = env.WORKER_TIMEOUT_MS?.trim();
  if (seconds && ms)
    throw new RangeError(
      `set WORKER_TIMEOUT (seconds) or WORKER_TIMEOUT_MS (milliseconds), not both: got WORKER_TIMEOUT=${seconds} and WORKER_TIMEOUT_MS=${ms}`,
    );
  if (ms) {
    const value = Number(ms);
    if (Number.isNaN(value) || value === 0)
      throw new RangeError(
        `WORKER_TIMEOUT_MS must be a non-zero number of milliseconds (negative = never), got ${JSON.stringify(ms)}`,
      );
    return value;
  }
  if (!seconds) return DEFAULT_TIMEOUT_MS;
  const value = Number(seconds);
  if (Number.isNaN(value) || value === 0)
    throw new RangeError(
      `WORKER_TIMEOUT must be a non-zero number of seconds (toto's unit; negative = never), got ${JSON.stringify(seconds)}`,
    );
  if (value > MAX_ENV_TIMEOUT_S)
    throw new RangeError(
      `WORKER_TIMEOUT is in seconds (toto's worker_timeout) and must be at most ${MAX_ENV_TIMEOUT_S}, got ${seconds}: for milliseconds set WORKER_TIMEOUT_MS=${seconds}`,
    );
  return value * 1000;
}

/** Connection options from `WORKER_*` variables (toto's `WORKER_*` settings, read by `WorkerConnection.instance()`). */
export function optionsFromEnv(
  env: Readonly<Record<string, string | undefined>>,
): WorkerConnectionOptions {
  const addresses = parseAddresses(env.WORKER_ADDRESS ?? '');
  const transportName = env.WORKER_TRANSPORT?.trim().toLowerCase();
  const protocol = env.WORKER_PROTOCOL?.trim().toLowerCase() === 'toto' ? 'toto' : 'wrpc/1';
  if (transportName && transportName !== 'zmq' && transportName !== 'http')
    throw new RangeError(`WORKER_TRANSPORT must be zmq or http, got ${transportName}`);
  const useHttp = transportName
    ? transportName === 'http'
    : addresses.length > 0 && addresses.every(isHttpAddress);
  const transport = useHttp ? httpTransport({ protocol }) : zmqTransport({ protocol });
  const timeoutMs = envTimeoutMs(env);
  const retryCount = env.WORKER_RETRY_COUNT?.trim() ? Number(env.WORKER_RETRY_COUNT) : 0;
  if (!(Number.isInteger(retryCount) && retryCount >= 0))
    throw new RangeError(`WORKER_RETRY_COUNT must be an integer >= 0`);
  const autoRetry = envBool(env.WORKER_AUTO_RETRY);
  const attempts = retryCount > 0 ? retryCount + 1 : autoRetry ? 3 : 1;
  const serialization = env.WORKER_SERIALIZATION?.trim().toLowerCase() || 'json';
  if (serialization !== 'json' && serialization !== 'msgpack')
    throw new RangeError(`WORKER_SERIALIZATION must be json or msgpack, got ${serialization}`);
  const compressionName = env.WORKER_COMPRESSION?.trim().toLowerCase() || 'none';
  if (!['none', 'gzip', 'deflate', 'br'].includes(compressionName))
    throw new RangeError(`WORKER_COMPRESSION must be none, gzip, deflate or br`);
  const mime = env.WORKER_SERIALIZATION_MIME?.trim();
  const threshold = env.WORKER_COMPRESSION_THRESHOLD?.trim()
    ? Number(env.WORKER_COMPRESSION_THRESHOLD)
    : 1024;
  const finite = timeoutMs > 0 && timeoutMs !== Infinity;
  return {
    addresses,
    transport,
    timeoutMs: finite && attempts > 1 ? timeoutMs * attempts : timeoutMs,
    // toto's auto_retry / auto_retry_count re-sent every call, not only idempotent ones
    ...(attempts > 1
      ? {
          retry: {
            maxAttempts: attempts,
            calls: 'all' as const,
            ...(finite ? { attemptTimeoutMs: timeoutMs } : {}),
          },
        }
      : {}),
    codec: serialization,
    ...(mime ? { serializationMime: mimeType(mime, 'WORKER_SERIALIZATION_MIME') } : {}),
    compression:
      compressionName === 'none'
        ? 'none'
        : { compressor: compressionName as 'gzip', thresholdBytes: threshold },
  };
}
