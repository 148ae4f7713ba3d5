import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** Options of {@link PipelineGate}. */
export interface PipelineGateOptions {
  /** Requests of one connection served at a time (HTTP/1.1 pipelining); at least 1. */
  readonly maxInFlight: number;
  /**
   * Requests of one connection parsed but not yet served; one more closes the connection.
   * Default `16 * maxInFlight`.
   */
  readonly maxWaiting?: number;
  /**
   * A full connection (`maxInFlight` requests in flight) on which no response completes for this
   * long is closed: a client that sends requests but reads no answers. Default 30 000 ms.
   */
  readonly stallTimeoutMs?: number;
}

/** One connection's requests: those in flight, those waiting, and the stall timer. */
interface Connection {
  readonly inFlight: Set<ServerResponse>;
  readonly waiting: Array<() => void>;
  stall: NodeJS.Timeout | undefined;
}

/**
 * Caps the requests one connection has in flight. Node's HTTP server parses every request of a
 * pipelined batch at once and emits them all (`'request'` per request, answers queued in order),
 * so one connection writing thousands of requests without reading an answer would take every
 * worker slot and queue place behind them. The gate serves at most `maxInFlight` requests of a
 * connection at a time; later ones wait for an earlier answer to complete.
 *
 * An answer counts until Node has handed its last byte to the connection (`'close'` of the
 * response after `'finish'`): answers a client does not read stay in flight, so such a client
 * is throttled to `maxInFlight` answers in the kernel's buffers. A full connection whose answers
 * make no progress for `stallTimeoutMs` is closed, and so is one with more than `maxWaiting`
 * requests waiting (the bound on what it holds in memory: Node's parser keeps reading a
 * connection while its answers flow, so the gate cannot stop it reading). A response whose
 * connection closes before its turn to be written gets a `'close'` too (Node emits none for a
 * queued pipelined response), so what listens to it (access log, in-flight count, spans) ends.
 */
export class PipelineGate {
  private readonly maxInFlight: number;
  private readonly maxWaiting: number;
  private readonly stallTimeoutMs: number;
  private readonly connections = new WeakMap<Socket, Connection>();

  constructor(options: PipelineGateOptions) {
    this.maxInFlight = options.maxInFlight;
    this.maxWaiting = options.maxWaiting ?? 16 * options.maxInFlight;
    this.stallTimeoutMs = options.stallTimeoutMs ?? 30_000;
  }

  /** Runs `serve` now when `req`'s connection has room, or once an earlier answer completes. */
  admit(req: IncomingMessage, res: ServerResponse, serve: () => void): void {
    const socket = req.socket;
    if (socket.destroyed) return;
    const conn = this.connection(socket);
    if (conn.inFlight.size < this.maxInFlight) return this.start(socket, conn, res, serve);
    if (conn.waiting.length >= this.maxWaiting) {
      socket.destroy();
      return;
    }
    conn.waiting.push(() => this.start(socket, conn, res, serve));
  }

  /** Requests of `socket` in flight (for tests and the dashboard). */
  inFlight(socket: Socket): number {
    return this.connections.get(socket)?.inFlight.size ?? 0;
  }

  private connection(socket: Socket): Connection {
    let conn = this.connections.get(socket);
    if (conn !== undefined) return conn;
    const created: Connection = { inFlight: new Set(), waiting: [], stall: undefined };
    this.connections.set(socket, created);
    socket.once('close', () => {
      clearTimeout(created.stall);
      created.waiting.length = 0;
      // Node emits 'close' on the response being written only: close the queued ones after it
      setImmediate(() => {
        for (const res of created.inFlight) {
          res.destroy();
          res.emit('close');
        }
      });
    });
    conn = created;
    return conn;
  }

  private start(socket: Socket, conn: Connection, res: ServerResponse, serve: () => void): void {
    conn.inFlight.add(res);
    res.once('close', () => {
      if (!conn.inFlight.delete(res)) return;
      const next = socket.destroyed ? undefined : conn.waiting.shift();
      if (next !== undefined) next();
      this.watch(socket, conn);
    });
    this.watch(socket, conn);
    serve();
  }

  /** Arms the stall timer while the connection is full, restarting it on each completed answer. */
  private watch(socket: Socket, conn: Connection): void {
    clearTimeout(conn.stall);
    conn.stall = undefined;
    if (conn.inFlight.size < this.maxInFlight || socket.destroyed) return;
    conn.stall = setTimeout(() => socket.destroy(), this.stallTimeoutMs);
    conn.stall.unref();
  }
}
