import type { Logger } from '@x/resilience';
import type { HeaderList, HeadersInput, RequestKind } from './types.js';

/** Who an instance is: handed to backends and lifecycle hooks. */
export interface InstanceContext {
  readonly module: string;
  readonly version: string;
  /** Instance id. */
  readonly instance: string;
  /** Slot number: `0…N-1` for manual and basic scaling, a running count for automatic. */
  readonly index: number;
  readonly log: Logger;
}

/** How an instance ended on its own (crash, exit). */
export interface InstanceExit {
  readonly code: number | null;
  readonly signal: string | null;
  readonly error?: unknown;
}

/** A request as an in-process handler sees it. */
export interface InstanceRequest {
  readonly method: string;
  /** Path and query. */
  readonly url: string;
  /** Path without the query. */
  readonly path: string;
  /** Lowercase names, duplicates kept. */
  readonly headers: HeaderList;
  readonly sourceIp: string;
  readonly kind: RequestKind;
  readonly instance: InstanceContext;
  /** Aborted when the client goes away or the deadline passes. */
  readonly signal: AbortSignal;
  /** First value of a header (case-insensitive). */
  header(name: string): string | undefined;
  /** The body as a stream of chunks (read it once). */
  readonly body: AsyncIterable<Uint8Array>;
  /** The whole body (at most the dispatcher's `maxBodyBytes`). */
  bytes(): Promise<Uint8Array>;
  text(): Promise<string>;
  json(): Promise<unknown>;
}

/** What an in-process handler returns. */
export interface InstanceResponse {
  /** Default 200. */
  readonly status?: number;
  /** Reason phrase. Default: the standard one for `status`. */
  readonly reason?: string;
  readonly headers?: HeadersInput;
  /** A string, bytes, or a stream of chunks. */
  readonly body?: string | Uint8Array | AsyncIterable<Uint8Array> | null;
}

/** An in-process request handler. */
export type InProcessHandler = (
  request: InstanceRequest,
) => InstanceResponse | Promise<InstanceResponse>;

/**
 * One running instance, as a backend provides it (GAE's `RuntimeProxy`). Out-of-process runtimes
 * expose an `origin` that the dispatcher talks HTTP to; in-process runtimes implement `handle`.
 */
export interface RuntimeProxy {
  /** Starts the instance; resolves once it accepts requests. Rejects on failure or abort. */
  start(signal: AbortSignal): Promise<void>;
  /** `http://host:port` of an out-of-process instance (known once started). */
  readonly origin: string | undefined;
  readonly pid: number | undefined;
  readonly port: number | undefined;
  /** Serves a request in-process (only when there is no `origin`). */
  handle?(request: InstanceRequest): InstanceResponse | Promise<InstanceResponse>;
  /** Stops it; `force` skips the graceful part (SIGKILL at once). Resolves once it is gone. */
  stop(force: boolean): Promise<void>;
  /** Called at most once when the instance ends without being asked to. */
  onExit(listener: (exit: InstanceExit) => void): void;
}

/** Creates instances of a version (GAE's `InstanceFactory`). */
export interface Backend {
  /** `'in-process'`, `'child-process'`, `'remote'` or your own. */
  readonly kind: string;
  /** Most instances this backend can provide at once (remote: the number of URLs). */
  readonly maxInstances: number;
  /** Whether the dispatcher sends `/_ah/start`, `/_ah/warmup` and `/_ah/stop` HTTP requests. */
  readonly lifecycleRequests: boolean;
  create(context: InstanceContext): RuntimeProxy;
}
