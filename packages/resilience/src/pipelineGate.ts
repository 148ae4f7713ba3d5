import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { describeValue } from './describeValue.js';
import { duration } from './duration.js';
import { InvalidArgumentError } from './errors.js';

/** Options of {@link PipelineGate}. */
export interface PipelineGateOptions {
  /** Requests of one connection served at a time (HTTP/1.1 pipelining); an integer of at least 1. */
  readonly maxInFlight: number;
  /**
   * Requests of one connection parsed but not yet served; one more closes the connection.
   * Default `16 * maxInFlight`.
   */
  readonly maxWaiting?: number;
  /**
   * A full connection (`maxInFlight` requests in flight) on which no response completes for this
   * long is closed: a client that sends requests but reads no answers. Default 30 000 ms;
   * `Infinity` never closes it.
   */
  readonly stallTimeoutMs?: number;
}

/** A request waiting for its turn on a full connection. */
interface Waiting {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly serve: (req: IncomingMessage, res: ServerResponse) => void;
}

/** One connection's requests: those in flight, those waiting, and the stall timer. */
interface Connection {
  readonly socket: Socket;
  /** A small array, not a Set: hashing a new response object per request costs more than indexOf over ≤ maxInFlight. */
  readonly inFlight: ServerResponse[];
  readonly waiting: Waiting[];
  stall: NodeJS.Timeout | undefined;
}

/**
 * Caps the requests one connection has in flight. Node's HTTP server parses every request of a
 * pipelined batch at once and emits them all (`'request'` per request, answers queued in order;
 * `socket.pause()` does not stop it), so one connection writing thousands of requests without
 * reading an answer would take every worker slot and queue place behind them. The gate serves at
 * most `maxInFlight` requests of a connection at a time, in order; later ones wait for an earlier
 * answer to complete.
 *
 * An answer counts until Node has handed its last byte to the connection (`'close'` of the
 * response after `'finish'`): answers a client does not read stay in flight, so such a client
 * is throttled to `maxInFlight` answers in the kernel's buffers. A full connection whose answers
 * make no progress for `stallTimeoutMs` is closed, and so is one with more than `maxWaiting`
 * requests waiting (the bound on what it holds in memory: Node's parser keeps reading a
 * connection while its answers flow, so the gate cannot stop it reading). A response whose
 * connection closes before its turn to be written gets a `'close'` too (Node emits none for a
 * queued pipelined response), so what listens to it (access log, in-flight count, spans) ends.
 *
 * Upgrade requests (`'upgrade'` event) never reach a request listener and are not gated. A
 * connection with one request at a time costs one small record per connection and a few field
 * reads per request (no allocation per request).
 *
 * @example
 * const gate = new PipelineGate({ maxInFlight: 8, stallTimeoutMs: 30_000 });
 * createServer((req, res) => gate.admit(req, res, serve)); // serve(req, res)
 */
export class PipelineGate {
  private readonly maxInFlight: number;
  private readonly maxWaiting: number;
  private readonly stallTimeoutMs: number;
  private readonly connections = new WeakMap<Socket, Connection>();
  /** One `'close'` listener for every response (`this` is the response): nothing allocated per request. */
  private readonly onResponseClose: (this: ServerResponse) => void;

  constructor(options: PipelineGateOptions) {
    if (typeof options !== 'object' || options === null)
      throw new InvalidArgumentError(
        'options',
        `options: expected an object, received ${describeValue(options)}`,
      );
    this.maxInFlight = count('maxInFlight', options.maxInFlight, undefined);
    this.maxWaiting = count('maxWaiting', options.maxWaiting, 16 * this.maxInFlight, 0);
    this.stallTimeoutMs = duration(options.stallTimeoutMs ?? 30_000, 'stallTimeoutMs', {
      exclusiveMin: true,
    });
    const connections = this.connections;
    const completed = this.completed.bind(this);
    this.onResponseClose = function (this: ServerResponse) {
      const conn = connections.get(this.req.socket);
      if (conn !== undefined) completed(conn, this);
    };
  }

  /**
   * Runs `serve(req, res)` now when `req`'s connection has room, or once an earlier answer
   * completes (pass a listener that takes `req, res` to allocate nothing per request).
   */
  admit(
    req: IncomingMessage,
    res: ServerResponse,
    serve: (req: IncomingMessage, res: ServerResponse) => void,
  ): void {
    const socket = req.socket;
    if (socket.destroyed) return;
    const conn = this.connections.get(socket) ?? this.connection(socket);
    if (conn.inFlight.length < this.maxInFlight) {
      this.start(conn, res);
      if (conn.inFlight.length === this.maxInFlight) this.watch(conn);
      serve(req, res);
      return;
    }
    if (conn.waiting.length >= this.maxWaiting) {
      socket.destroy();
      return;
    }
    conn.waiting.push({ req, res, serve });
  }

  /** Requests of `socket` in flight (for tests and dashboards). */
  inFlight(socket: Socket): number {
    return this.connections.get(socket)?.inFlight.length ?? 0;
  }

  private connection(socket: Socket): Connection {
    const conn: Connection = { socket, inFlight: [], waiting: [], stall: undefined };
    this.connections.set(socket, conn);
    socket.once('close', () => {
      clearTimeout(conn.stall);
      conn.waiting.length = 0;
      // Node emits 'close' on the response being written only: close the queued ones after it
      setImmediate(() => {
        for (const res of conn.inFlight.slice()) {
          res.destroy();
          res.emit('close');
        }
      });
    });
    return conn;
  }

  private start(conn: Connection, res: ServerResponse): void {
    conn.inFlight.push(res);
    res.on('close', this.onResponseClose);
  }

  /** An answer completed (or its connection died): the next waiting request takes its place. */
  private completed(conn: Connection, res: ServerResponse): void {
    const inFlight = conn.inFlight;
    const at = inFlight.indexOf(res);
    if (at < 0) return;
    const last = inFlight.pop()!;
    if (at < inFlight.length) inFlight[at] = last;
    const next = conn.socket.destroyed ? undefined : conn.waiting.shift();
    if (next !== undefined) this.start(conn, next.res);
    this.watch(conn);
    if (next !== undefined) next.serve(next.req, next.res);
  }

  /** Arms the stall timer while the connection is full, restarting it on each completed answer. */
  private watch(conn: Connection): void {
    if (conn.stall !== undefined) {
      clearTimeout(conn.stall);
      conn.stall = undefined;
    }
    if (
      conn.inFlight.length < this.maxInFlight ||
      conn.socket.destroyed ||
      this.stallTimeoutMs === Infinity
    )
      return;
    const socket = conn.socket;
    conn.stall = setTimeout(() => socket.destroy(), this.stallTimeoutMs);
    conn.stall.unref();
  }
}

/** A positive integer option (`fallback` when absent), else `InvalidArgumentError` naming it. */
function count(field: string, value: unknown, fallback: number | undefined, min = 1): number {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= min) return value;
  throw new InvalidArgumentError(
    field,
    `${field}: expected an integer >= ${min}, received ${describeValue(value)}`,
  );
}
