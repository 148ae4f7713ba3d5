import { once } from 'node:events';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { startNodeProcess } from '@x/testkit';

/** Options of {@link runAutocannon}. */
export interface AutocannonOptions {
  readonly url: string;
  /** Concurrent connections (each keeps one request in flight). */
  readonly connections: number;
  readonly durationSeconds: number;
  /** A request with no answer after this many seconds counts as a timeout. Default 10. */
  readonly timeoutSeconds?: number;
}

/** The part of autocannon's `--json` result the suite reads (latencies in whole milliseconds). */
export interface AutocannonResult {
  readonly duration: number;
  readonly errors: number;
  readonly timeouts: number;
  readonly non2xx: number;
  readonly '2xx': number;
  readonly statusCodeStats: Record<string, { count: number }>;
  readonly latency: { readonly p50: number; readonly p99: number; readonly max: number };
  readonly requests: { readonly total: number; readonly sent: number };
}

const AUTOCANNON_CLI = join(
  dirname(createRequire(import.meta.url).resolve('autocannon/package.json')),
  'autocannon.js',
);

/**
 * Runs autocannon's CLI against `url` in its own process (the load generator never shares the
 * test's event loop or the server's CPU accounting) and resolves with its JSON result.
 */
export async function runAutocannon(options: AutocannonOptions): Promise<AutocannonResult> {
  const { url, connections, durationSeconds, timeoutSeconds = 10 } = options;
  const child = await startNodeProcess(AUTOCANNON_CLI, {
    args: [
      ...['-c', String(connections), '-d', String(durationSeconds)],
      ...['-t', String(timeoutSeconds), '--no-progress', '--json', url],
    ],
  });
  try {
    const [code] = (await once(child.child, 'close')) as [number | null];
    if (code !== 0) throw new Error(`autocannon exited with ${code}: ${child.stderr()}`);
    return JSON.parse(child.stdout()) as AutocannonResult;
  } finally {
    await child.kill('SIGKILL');
  }
}
