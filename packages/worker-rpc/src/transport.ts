import type { WorkerRpcError } from './errors.js';
import type { KindValue } from './protocol.js';

/** One request as a client transport sends it (an attempt of a call). */
export interface OutgoingRequest {
  /** 16-byte id: connection nonce + sequence number. Retries and hedges reuse it. */
  readonly id: Uint8Array;
  readonly method: string;
  /** Attempt number, 0 for the first. */
  readonly attempt: number;
  /** Remaining budget in ms at this moment, -1 when the call has no deadline. */
  budgetMs(): number;
  readonly idempotent: boolean;
  /** Idempotency key, '' for none. */
  readonly key: string;
  readonly meta: Readonly<Record<string, string>> | undefined;
  /** Ask the worker for an ACK on delivery (`ack: 'delivery'`). */
  readonly ack: boolean;
  /** Codec name of the body. */
  readonly codec: string;
  /** MIME type of the codec (HTTP `content-type`). */
  readonly contentType: string;
  /** Compression the client uses and accepts for replies ('' = none). */
  readonly encoding: string;
  /** Whether `body` is compressed with `encoding`. */
  readonly compressed: boolean;
  /** Encoded (and maybe compressed) params; empty for `undefined`. */
  readonly body: Uint8Array;
  /** Optional fast path: writes `id` into `target` at `offset` (a transport may use it instead of reading `id`). */
  writeId?(target: Uint8Array, offset: number): void;
}

/** A reply a transport hands to the connection. */
export interface ReplyFrame {
  readonly kind: KindValue;
  readonly body: Uint8Array | undefined;
  /** Codec of `body`. */
  readonly codec: string;
  /** Compression of `body` when `compressed`. */
  readonly encoding: string;
  readonly compressed: boolean;
  /** Free slots the endpoint advertised, -1 when unknown. */
  readonly credit: number;
  /**
   * The transport read the body's compression from the wire (HTTP `content-encoding`), so
   * `compressed` is exact: toto mode then decompresses only when it is set, as toto's HTTP client
   * (through tornado) did, instead of applying the connection's compressor to every reply.
   */
  readonly wireEncoding?: boolean;
  /** For HTTP error statuses: the body is `{ error: WireError }` rather than a bare WireError. */
  readonly wrapped?: boolean;
  /** The error to use when an ERR body cannot be decoded (HTTP: derived from the status). */
  readonly fallbackError?: WorkerRpcError;
}

/** Endpoint readiness as a transport reports it. */
export type ChannelState = 'up' | 'down' | 'draining';

/** Callbacks from a transport channel to the connection that owns it. */
export interface ChannelEvents {
  /** A RES, ERR or ACK for request `id` arrived from this channel. */
  reply(channel: Channel, id: Uint8Array, frame: ReplyFrame): void;
  /** Request `id` failed on this channel before any reply (send failed, connection reset, ...). */
  fail(channel: Channel, id: Uint8Array, error: WorkerRpcError): void;
  /** Readiness changed; `down` fails every attempt in flight on the channel with `error`. */
  state(channel: Channel, state: ChannelState, error?: WorkerRpcError): void;
  /** The endpoint advertised `credit` free slots (PONG, CREDIT or HTTP `x-rpc-credit`). */
  credit(channel: Channel, credit: number): void;
}

/** Limits and tables a channel may need. */
export interface ChannelContext {
  /** Largest body accepted in a reply (bytes, after decompression too). */
  readonly maxBodyBytes: number;
}

/** A connection to one endpoint address. */
export interface Channel {
  readonly address: string;
  /** Starts sending `request`; returns an error when it cannot even be queued. */
  send(request: OutgoingRequest): WorkerRpcError | undefined;
  /** Best-effort cancellation of `request` on the endpoint (wrpc/1 CANCEL, HTTP abort). */
  cancel(request: OutgoingRequest): void;
  /** Releases the channel's sockets and timers. */
  close(): Promise<void>;
}

/**
 * A client transport: opens one {@link Channel} per endpoint address. `zmqTransport()` and
 * `httpTransport()` are the built-in ones.
 */
export interface Transport {
  /** `zmq`, `http` or your own. */
  readonly name: string;
  /** Wire protocol spoken: `wrpc/1` or toto's frames. */
  readonly protocol: 'wrpc/1' | 'toto';
  /**
   * Opens a channel; readiness is reported through `events.state`. Throws `INVALID_ARGUMENT` at
   * once for an address the transport cannot use.
   */
  open(address: string, events: ChannelEvents, context: ChannelContext): Channel;
  /**
   * Optional: throws `INVALID_ARGUMENT` naming a malformed address and returns it trimmed. The
   * connection checks every address with it before opening any (the zmq and http transports have it).
   */
  checkAddress?(address: string): string;
  /** Releases resources shared by the channels. */
  close(): Promise<void>;
}
