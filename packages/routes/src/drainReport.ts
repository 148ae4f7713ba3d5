import type { Logger } from '@x/resilience';
import type { Dependency } from './dependency.js';
import type { EntryRef } from './entrypoint.js';

/** What `stop()` reports: what was handed back, what finished, what had to be killed. */
export interface DrainReport {
  /** Work handed back unstarted (requeued by its entrypoint, or answered 503). */
  readonly returned: EntryRef[];
  /** Work in flight when the stop began that finished before the deadline. */
  readonly completed: number;
  /** Work still running at the deadline: aborted, settled as `cancelled` (requeued). */
  readonly killed: EntryRef[];
  readonly timedOut: boolean;
  readonly durationMs: number;
}

/** Options of `stop()`. */
export interface StopOptions {
  /** How long in-flight work may take to finish before it is killed. Default 30 000 ms. */
  readonly timeoutMs?: number;
}

/** Stops (or kills) dependencies in order, logging failures (never throws). */
export async function stopDependencies(
  deps: Iterable<Dependency<unknown>>,
  logger: Logger,
  kill = false,
): Promise<void> {
  for (const dep of deps) {
    try {
      if (kill && dep.kill) await dep.kill();
      else await dep.stop?.();
    } catch (err) {
      logger.warn({ err }, 'dependency stop failed');
    }
  }
}
