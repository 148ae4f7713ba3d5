import { Agent, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { HOP_BY_HOP_HEADERS } from '@x/dispatcher';
import { DEADLINE_HEADER } from '@x/resilience';
import { remainingBudgetHeader } from './edgeBudget.js';
import { sendJson } from './sendJson.js';

/** A streaming reverse proxy to the dispatcher's front door. */
export interface FrontDoorProxy {
  /** `limits.maxBodyBytes` lowers the body limit for this request (e.g. the admin API's). */
  (
    req: IncomingMessage,
    res: ServerResponse,
    requestId: string,
    limits?: { readonly maxBodyBytes?: number },
  ): void;
  close(): void;
}

/** Headers by which a client could claim another address or scheme: set by the gateway only. */
const CLIENT_ADDRESS_HEADERS: ReadonlySet<string> = new Set([
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-forwarded-port',
  'x-real-ip',
]);

/** Idle keep-alive sockets to the front door are closed after this (its keep-alive is 5 s). */
const FRONT_DOOR_IDLE_MS = 4_000;

/** Options of {@link frontDoorProxy}. */
export interface FrontDoorProxyOptions {
  /** Largest request body forwarded; a bigger one is answered 413 here. Default 32 MiB. */
  readonly maxBodyBytes?: number;
}

/**
 * Forwards a request to `@x/dispatcher`'s front door (on a loopback port) and streams the answer
 * back: bodies are piped both ways with backpressure, hop-by-hop headers are dropped, and the
 * client address and request id go along (the front door trusts loopback for them). The client
 * address is the peer's: an `X-Forwarded-For` sent by the client is replaced, not extended. A
 * front door that cannot be reached answers 502 `{"error":{"code":"BAD_GATEWAY"}}`.
 *
 * A body over `maxBodyBytes` (declared or counted while streaming) is answered 413
 * `PAYLOAD_TOO_LARGE` here and never forwarded whole. Any answer sent before the client's body
 * was read to its end closes the connection, so the client stops uploading rather than the gateway
 * reading and discarding the rest.
 *
 * The dispatcher serves HTTP only through its own listener, so the gateway puts this in front of
 * it for everything its own routes do not handle.
 */
export function frontDoorProxy(
  frontDoorUrl: string,
  options: FrontDoorProxyOptions = {},
): FrontDoorProxy {
  const target = new URL(frontDoorUrl);
  const defaultMaxBodyBytes = options.maxBodyBytes ?? 32 * 1024 * 1024;
  // Idle sockets are dropped after 4 s, before the front door's 5 s keep-alive closes them:
  // reusing a socket the server is closing answered a GET 502 "socket hang up" under load.
  const agent = new Agent({
    keepAlive: true,
    maxSockets: 256,
    keepAliveMsecs: 1_000,
    timeout: FRONT_DOOR_IDLE_MS,
  });
  const forward = (
    req: IncomingMessage,
    res: ServerResponse,
    requestId: string,
    limits: { readonly maxBodyBytes?: number } = {},
  ): void => {
    const maxBodyBytes = Math.min(defaultMaxBodyBytes, limits.maxBodyBytes ?? Infinity);
    const fail = (status: number, code: string, message: string): void => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      sendJson(
        res,
        status,
        { error: { code, message }, requestId },
        req.complete ? {} : { connection: 'close' },
      );
    };
    const tooLarge = `the request body is larger than ${maxBodyBytes} bytes`;
    if (Number(req.headers['content-length'] ?? 0) > maxBodyBytes) {
      fail(413, 'PAYLOAD_TOO_LARGE', tooLarge);
      return;
    }
    // The body is counted here too, not only by the front door: its 413 could race our upload and
    // surface as a write error (502) instead.
    let received = 0;
    let refused = false;
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(req.headers))
      if (value !== undefined && !HOP_BY_HOP_HEADERS.has(name) && !CLIENT_ADDRESS_HEADERS.has(name))
        headers[name] = value;
    headers['x-request-id'] = requestId;
    // what is left of the client's budget (accepted and capped at the edge): the front door's
    // deadline becomes min(it, dispatcher.requestTimeoutMs)
    const budget = remainingBudgetHeader(req);
    if (budget !== undefined) headers[DEADLINE_HEADER] = budget;
    // The gateway is the edge: the peer is the client. What a client says about its own address
    // is dropped, never passed on (the front door trusts the gateway, so it would trust forgeries).
    headers['x-forwarded-for'] = req.socket.remoteAddress ?? '';
    headers['x-forwarded-proto'] = 'http';
    const upstream = request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers,
        agent,
      },
      answer => {
        const out: Record<string, string | string[]> = {};
        for (const [name, value] of Object.entries(answer.headers))
          if (value !== undefined && !HOP_BY_HOP_HEADERS.has(name)) out[name] = value;
        if (!req.complete) out.connection = 'close';
        res.writeHead(answer.statusCode ?? 502, answer.statusMessage, out);
        answer.pipe(res);
        answer.on('error', () => res.destroy());
      },
    );
    upstream.on('error', error => {
      if (!refused) fail(502, 'BAD_GATEWAY', `the dispatcher front door failed: ${error.message}`);
    });
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received <= maxBodyBytes || refused) return;
      refused = true;
      req.unpipe(upstream);
      upstream.destroy();
      fail(413, 'PAYLOAD_TOO_LARGE', tooLarge);
    });
    req.pipe(upstream);
  };
  return Object.assign(forward, { close: () => agent.destroy() });
}
