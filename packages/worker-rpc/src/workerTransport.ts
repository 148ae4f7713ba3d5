import type { WorkerRpcError } from './errors.js';
import type { KindValue } from './protocol.js';

/** How a reply is framed back (set by the worker, read by the transport). */
export interface ResponseInfo {
  /** Codec of the body. */
  readonly codec: string;
  /** Compression of the body when `compressed`. */
  readonly encoding: string;
  readonly compressed: boolean;
  /** The worker's free slots. */
  readonly credit: number;
  /** For ERR: the error code (HTTP maps it to a status). */
  readonly code?: string;
  /** For ERR: wait hint (HTTP `retry-after`). */
  readonly retryAfterMs?: number;
}

/** One request as a worker transport hands it to the worker. */
export interface IncomingRequest {
  /** 16-byte request id (toto: the UUID's bytes; HTTP: `x-request-id` or a fresh one). */
  readonly id: Uint8Array;
  /** Dotted method name; '' for toto frames (the method is inside the body). */
  readonly method: string;
  readonly attempt: number;
  /** Remaining budget in ms when received, -1 for none. */
  readonly budgetMs: number;
  readonly idempotent: boolean;
  /** Idempotency key, '' for none. */
  readonly key: string;
  readonly meta: Readonly<Record<string, string>> | undefined;
  /** Send an ACK as soon as the request is accepted. */
  readonly ack: boolean;
  /** Codec of the body ('' = the worker's default codec). */
  readonly codec: string;
  /** Compression the client uses and accepts for the reply ('' = none). */
  readonly encoding: string;
  readonly compressed: boolean;
  readonly body: Uint8Array | undefined;
  /** toto frames: reply `{ error: { code, value } }` values and bare ACKs. */
  readonly toto: boolean;
  /** HTTP: error bodies are wrapped as `{ error }`. */
  readonly wrapErrors: boolean;
  /**
   * toto over HTTP: toto's `HTTPWorkerConnection` reads every reply with `loads(response.body)` and
   * never decompresses it, so replies are never compressed and an ACK carries a serialized `null`
   * (not an empty body). Requests are still decompressed with the worker's toto compressor.
   */
  readonly totoHttp?: boolean;
  /** Sends RES, ERR or ACK to the caller. Must not throw. */
  respond(kind: KindValue, body: Uint8Array | undefined, info: ResponseInfo): void;
}

/** What a worker transport calls on the worker. */
export interface WorkerSink {
  /** A request arrived. */
  request(request: IncomingRequest): void;
  /** The caller cancelled request `id` (wrpc/1 CANCEL, HTTP client gone). */
  cancel(id: Uint8Array): void;
  /** Free slots to advertise (PONG, CREDIT, reply headers). */
  credit(): number;
  /** A frame was rejected (malformed, oversized, unknown kind); counted in `status()`. */
  rejected(error: WorkerRpcError): void;
  /** Largest accepted body in bytes. */
  readonly maxBodyBytes: number;
}

/**
 * The serving side of a transport: `zmqWorkerTransport()` (ROUTER when binding, DEALER when
 * connecting to a router or broker) and `httpWorkerTransport()` (`node:http`).
 */
export interface WorkerTransport {
  readonly name: string;
  /** Addresses actually bound or connected (port 0 resolved), once started. */
  readonly addresses: readonly string[];
  /** Binds or connects and starts delivering requests to `sink`. */
  start(sink: WorkerSink): Promise<void>;
  /** Tells peers this worker is leaving (wrpc/1 DRAIN to clients and brokers). */
  drain(): void;
  /** Stops receiving and releases sockets, servers and timers. */
  close(): Promise<void>;
}
