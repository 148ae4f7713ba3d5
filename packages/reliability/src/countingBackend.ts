import { once } from 'node:events';
import type { NodeProcess } from '@x/testkit';
import { startFixture } from './fixtureProcess.js';

/** A `fixtures/countingBackend.mjs` child process and what it has counted so far. */
export interface CountingBackend {
  readonly name: string;
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  readonly process: NodeProcess;
  /** Orders executed per request id (read from its stdout, so the counts survive a SIGKILL). */
  executions(): Map<string, number>;
  /** Orders received per request id, executed or answered from the idempotency store. */
  attempts(): Map<string, number>;
  /** Orders received whose attempt is not answered yet. */
  ordersInFlight(): number;
  /** Kills it (SIGKILL by default) and waits until all of its stdout has been read. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts a counting backend (see `fixtures/countingBackend.mjs`). */
export async function startCountingBackend(name: string): Promise<CountingBackend> {
  const proc = await startFixture('countingBackend', [name]);
  const closed = once(proc.child, 'close');
  const count = (prefix: string) => {
    const counts = new Map<string, number>();
    for (const line of proc.stdout().split('\n'))
      if (line.startsWith(prefix)) {
        const id = line.slice(prefix.length);
        counts.set(id, (counts.get(id) ?? 0) + 1);
      }
    return counts;
  };
  return {
    name,
    url: proc.ready,
    process: proc,
    executions: () => count('EXEC '),
    attempts: () => count('ATTEMPT '),
    ordersInFlight: () => {
      const lines = proc.stdout().split('\n');
      return (
        lines.filter(line => line.startsWith('ATTEMPT ')).length -
        lines.filter(line => line.startsWith('DONE ')).length
      );
    },
    kill: async (signal = 'SIGKILL') => {
      await proc.kill(signal);
      await closed;
    },
  };
}

/** Sums per-id counts of several backends. */
export function mergeCounts(counts: Iterable<Map<string, number>>): Map<string, number> {
  const total = new Map<string, number>();
  for (const map of counts) for (const [id, n] of map) total.set(id, (total.get(id) ?? 0) + n);
  return total;
}
