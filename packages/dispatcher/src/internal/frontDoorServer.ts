import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { PipelineGate } from '@x/resilience';
import { sendSocketError } from './errorResponse.js';
import type { FrontDoorHandler } from './frontDoorHandler.js';

/** Settings of the front door's own listener. */
export interface FrontDoorServerSettings {
  readonly port: number;
  readonly host: string;
  readonly maxHeaderBytes: number;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly maxConnections: number;
  /** Requests of one connection served at a time ({@link PipelineGate}). */
  readonly maxPipelinedRequests: number;
  /** Tunnel upgrade requests; otherwise Node serves them as plain requests. */
  readonly upgrades: boolean;
}

/**
 * `dispatcher.listen()`: a `node:http` server that mounts a {@link FrontDoorHandler} (requests
 * and upgrades) and answers what never becomes a request (a malformed or oversized head, a slow
 * client) with 400/431/408 itself. A connection pipelining requests has at most
 * `maxPipelinedRequests` of them served at a time ({@link PipelineGate}; upgrades are not gated):
 * one socket cannot take every instance slot and wait-queue place.
 */
export class FrontDoorServer {
  readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private closing: Promise<void> | undefined;

  constructor(
    readonly handler: FrontDoorHandler,
    readonly settings: FrontDoorServerSettings,
  ) {
    // a full connection whose answers make no progress for requestTimeoutMs is closed
    const gate = new PipelineGate({
      maxInFlight: settings.maxPipelinedRequests,
      stallTimeoutMs: settings.requestTimeoutMs,
    });
    this.server = createServer(
      {
        maxHeaderSize: settings.maxHeaderBytes,
        headersTimeout: settings.headersTimeoutMs,
        requestTimeout: settings.requestTimeoutMs,
        keepAliveTimeout: settings.keepAliveTimeoutMs,
        connectionsCheckingInterval: Math.min(
          1_000,
          Math.max(100, Math.floor(settings.headersTimeoutMs / 4)),
        ),
        joinDuplicateHeaders: false,
        requireHostHeader: false,
      },
      (req, res) => gate.admit(req, res, handler.handler),
    );
    this.server.maxConnections = settings.maxConnections;
    if (settings.upgrades) this.server.on('upgrade', handler.upgrade);
    this.server.on('clientError', (error, socket) => onClientError(error, socket as Socket));
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
  }

  listen(): Promise<{ port: number; host: string }> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error) => reject(error);
      this.server.once('error', onError);
      this.server.listen(this.settings.port, this.settings.host, () => {
        this.server.off('error', onError);
        const address = this.server.address();
        resolve({
          port: typeof address === 'object' && address ? address.port : this.settings.port,
          host: this.settings.host,
        });
      });
    });
  }

  /** Stops accepting, lets in-flight requests finish (up to `drainTimeoutMs`), closes every socket. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const closed = new Promise<void>(resolve => this.server.close(() => resolve()));
      this.server.closeIdleConnections();
      await this.handler.close();
      this.server.closeAllConnections();
      for (const socket of this.sockets) socket.destroy();
      await closed;
    })();
    return this.closing;
  }
}

function onClientError(error: Error & { code?: string }, socket: Socket): void {
  if (
    !socket.writable ||
    (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent
  ) {
    socket.destroy();
    return;
  }
  if (error.code === 'ECONNRESET' || error.code === 'EPIPE') {
    socket.destroy();
    return;
  }
  if (error.code === 'HPE_HEADER_OVERFLOW')
    return sendSocketError(socket, 431, 'Request Header Fields Too Large', {
      code: 'HEADERS_TOO_LARGE',
      message: 'Request Header Fields Too Large',
    });
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT')
    return sendSocketError(socket, 408, 'Request Timeout', {
      code: 'REQUEST_TIMEOUT',
      message: 'Request Timeout',
    });
  sendSocketError(socket, 400, 'Bad Request', { code: 'INVALID_REQUEST', message: 'Bad Request' });
}
