/** Worker state. */
export type WorkerState = 'idle' | 'running' | 'draining' | 'closed';

/** What `status()` (and the `$status` admin method) reports. */
export interface WorkerStatus {
  readonly state: WorkerState;
  readonly active: number;
  readonly queued: number;
  readonly concurrency: number;
  readonly queue: number;
  /** Idle handler slots advertised as credit. */
  readonly credit: number;
  readonly completed: number;
  readonly failed: number;
  readonly rejected: number;
  /** Duplicate requests answered from the dedupe window (joined or replayed). */
  readonly deduplicated: number;
  /** Frames dropped or answered with BAD_FRAME / UNSUPPORTED / FRAME_TOO_LARGE. */
  readonly badFrames: number;
  readonly dedupeEntries: number;
  readonly uptimeMs: number;
  readonly addresses: readonly string[];
}
