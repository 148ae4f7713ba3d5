import type { Meta } from './outcome.js';

/**
 * What a target, a translator and a dependency see of the current worker (nameko's
 * `WorkerContext`): ids, metadata, attempt, cancellation, injected dependencies.
 */
export interface WorkerContext<Deps = Readonly<Record<string, unknown>>> {
  /** `<route>.<id>`: unique per worker run. */
  readonly callId: string;
  /** Parent call ids (from `meta.callIdStack`) then this one; at most 10 (nameko's limit). */
  readonly callIdStack: readonly string[];
  /** The message's metadata (≙ `_meta`), shared with dependencies and extensions. */
  readonly meta: Readonly<Meta>;
  /** 0 for the first try, then 1, 2, ... (≙ `_meta['backoff']['retry_count']`). */
  readonly attempt: number;
  /** Aborted on a per-attempt timeout or the message's deadline, when the route kills the work, or by the entrypoint. */
  readonly signal: AbortSignal;
  /**
   * When this attempt must end, on the route clock: the message's deadline or the route's
   * `timeoutMs`, the earlier (`Infinity`: none).
   */
  readonly deadline: number;
  /**
   * Ms left before {@link deadline} (`Infinity`: none): forward it to the next hop, e.g.
   * `fn.run({ timeoutMs: ctx.remainingMs })`, a rest-client `timeout`, a worker-rpc `timeoutMs`.
   */
  readonly remainingMs: number;
  /** The injected dependencies, by name. */
  readonly deps: Deps;
  /** The route's metric label. */
  readonly route: string;
  /** The transport handle of the message (see {@link Delivery.entryId}). */
  readonly entryId: unknown;
}
