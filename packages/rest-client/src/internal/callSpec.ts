import type { TraceSpan } from '@x/resilience';
import type { DecodeMode } from '../restCallOptions.js';

/** Methods whose repetition cannot repeat a side effect (RFC 9110 §9.2.2). */
export const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set([
  'GET',
  'HEAD',
  'OPTIONS',
  'PUT',
  'DELETE',
  'TRACE',
]);

/** Methods that only read, the ones hedging applies to. */
export const READ_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS']);

/** One call, validated and resolved: shared by its tries. */
export interface CallSpec {
  readonly method: string;
  /** Path and query, validated. */
  readonly path: string;
  readonly headers: Readonly<Record<string, string>> | undefined;
  readonly body: string | Uint8Array | undefined;
  readonly idempotent: boolean;
  readonly decode: DecodeMode;
  readonly signal: AbortSignal | undefined;
  readonly totalMs: number;
  readonly perTryMs: number;
  /** Clock time the call started; set when it starts. */
  startedAt: number;
  /** Absolute deadline on the client clock; set when the call starts. */
  deadline: number;
  readonly retry: boolean;
  readonly hedge: boolean;
  /** The span of the logical call (retries, hedges, broadcast), parent of its tries' spans. */
  trace?: TraceSpan;
  /** Shard keys this call asks for (`Shards.multicast`), for its tries' spans. */
  shardKeys?: readonly unknown[];
}
