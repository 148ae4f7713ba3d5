import { Agent, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { HOP_BY_HOP_HEADERS } from '@x/dispatcher';

/** A streaming reverse proxy to the dispatcher's front door. */
export interface FrontDoorProxy {
  (req: IncomingMessage, res: ServerResponse, requestId: string): void;
  close(): void;
}

/**
 * Forwards a request to `@x/dispatcher`'s front door (on a loopback port) and streams the answer
 * back: bodies are piped both ways with backpressure, hop-by-hop headers are dropped, and the
 * client address and request id go along (the front door trusts loopback for them). A front door
 * that cannot be reached answers 502 `{"error":{"code":"BAD_GATEWAY"}}`.
 *
 * The dispatcher serves HTTP only through its own listener, so the gateway puts this in front of
 * it for everything its own routes do not handle.
 */
export function frontDoorProxy(frontDoorUrl: string): FrontDoorProxy {
  const target = new URL(frontDoorUrl);
  const agent = new Agent({ keepAlive: true, maxSockets: 256, keepAliveMsecs: 1_000 });
  const forward = (req: IncomingMessage, res: ServerResponse, requestId: string): void => {
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(req.headers))
      if (value !== undefined && !HOP_BY_HOP_HEADERS.has(name)) headers[name] = value;
    headers['x-request-id'] = requestId;
    const client = req.socket.remoteAddress ?? '';
    const previous = req.headers['x-forwarded-for'];
    headers['x-forwarded-for'] = previous ? `${String(previous)}, ${client}` : client;
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
        res.writeHead(answer.statusCode ?? 502, answer.statusMessage, out);
        answer.pipe(res);
        answer.on('error', () => res.destroy());
      },
    );
    upstream.on('error', error => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const body = JSON.stringify({
        error: {
          code: 'BAD_GATEWAY',
          message: `the dispatcher front door failed: ${error.message}`,
        },
        requestId,
      });
      res.writeHead(502, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
      });
      res.end(body);
    });
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  };
  return Object.assign(forward, { close: () => agent.destroy() });
}
