import { timerOptions } from './internal/durationOption.js';
import { DEADLINE_HEADER, describeValue, readDeadlineHeader } from '@x/resilience';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WorkerRpcError } from './errors.js';
import { codecFromHeaders } from './httpTransport.js';
import { Kind, type KindValue } from './protocol.js';
import type {
  IncomingRequest,
  ResponseInfo,
  WorkerSink,
  WorkerTransport,
} from './workerTransport.js';

/** Options of {@link httpWorkerTransport}. */
export interface HttpWorkerTransportOptions {
  /** Port to listen on; 0 (default) picks a free one (see `addresses`). */
  readonly port?: number;
  /** Interface to listen on. Default `127.0.0.1`. */
  readonly host?: string;
  /** Base path: requests go to `{path}/rpc/{method}` (wrpc/1) or `POST {path}/` (toto body). Default ''. */
  readonly path?: string;
  /** Require `authorization: Bearer <token>` (compared in constant time). */
  readonly token?: string;
  /** Keep-alive timeout of idle connections (ms). Default 5 000. */
  readonly keepAliveTimeoutMs?: number;
  /** Accept toto requests (`POST {path}/` with `{ method, parameters }`). Default true. */
  readonly toto?: boolean;
}

/** HTTP status for an error code (the reverse of the client's mapping). */
export function statusForCode(code: string | undefined): number {
  switch (code) {
    case 'INVALID_ARGUMENT':
    case 'BAD_FRAME':
      return 400;
    case 'UNAUTHENTICATED':
      return 401;
    case 'NOT_FOUND':
      return 404;
    case 'TIMEOUT':
      return 408;
    case 'FRAME_TOO_LARGE':
      return 413;
    case 'UNSUPPORTED':
      return 415;
    case 'OVERLOADED':
      return 429;
    case 'CANCELLED':
      return 499;
    case 'INTERNAL':
      return 500;
    case 'UNAVAILABLE':
    case 'CLOSED':
      return 503;
    case 'DEADLINE_EXCEEDED':
      return 504;
    default:
      return 422; // an application error: the request was understood and refused by the handler
  }
}

const CODEC_MIME: Record<string, string> = {
  json: 'application/json',
  msgpack: 'application/msgpack',
};
const HEX_ID = /^[0-9a-f]{32}$/i;

/**
 * The HTTP worker transport on `node:http`: `POST {path}/rpc/{method}` (and toto's `POST {path}/`
 * with `{ method, parameters }`). It reads `x-request-id`, `x-rpc-timeout-ms`, `x-rpc-attempt`,
 * `idempotency-key`, `x-rpc-meta`, `x-rpc-ack`, `content-type`/`x-rpc-codec`, `content-encoding` and
 * `accept-encoding`; answers 200 (result), 202 (ACK) or an error status with `{ error }`, plus
 * `x-rpc-credit`. A client that disconnects cancels the handler. Bodies are bounded
 * (`maxBodyBytes`, 413) and an optional bearer token is required (401).
 */
export function httpWorkerTransport(options: HttpWorkerTransportOptions = {}): WorkerTransport {
  return new HttpWorkerTransport(options);
}

class HttpWorkerTransport implements WorkerTransport {
  readonly name = 'http';
  addresses: string[] = [];
  private server: Server | undefined;
  private sink: WorkerSink | undefined;
  private readonly base: string;
  private readonly token: Buffer | undefined;
  private draining = false;

  constructor(private readonly options: HttpWorkerTransportOptions) {
    timerOptions(options, ['keepAliveTimeoutMs']);
    const { port = 0, host = '127.0.0.1' } = options;
    if (!(Number.isInteger(port) && port >= 0 && port <= 65_535))
      throw new WorkerRpcError(
        'INVALID_ARGUMENT',
        `port: expected an integer in 0-65535 (0: a free port), received ${describeValue(port)}`,
      );
    if (typeof host !== 'string' || !/^(?:[A-Za-z0-9._-]+|\[?[0-9A-Fa-f:.]+\]?)$/.test(host))
      throw new WorkerRpcError(
        'INVALID_ARGUMENT',
        `host: expected a host name or an IP address, received ${describeValue(host)}`,
      );
    this.base = (options.path ?? '').replace(/\/+$/, '');
    this.token = options.token ? Buffer.from(`Bearer ${options.token}`) : undefined;
  }

  async start(sink: WorkerSink): Promise<void> {
    this.sink = sink;
    const server = createServer(
      { keepAliveTimeout: this.options.keepAliveTimeoutMs ?? 5_000 },
      (req, res) => {
        try {
          this.onRequest(req, res);
        } catch (error) {
          this.fail(res, new WorkerRpcError('INTERNAL', (error as Error).message));
        }
      },
    );
    server.on('clientError', (_error, socket) => {
      sink.rejected(new WorkerRpcError('BAD_FRAME', 'malformed HTTP request'));
      if (socket.writable)
        socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      else socket.destroy();
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port ?? 0, this.options.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    this.addresses = [`http://${host}:${address.port}${this.base}`];
  }

  private fail(
    res: ServerResponse,
    error: WorkerRpcError,
    extra: Record<string, string> = {},
  ): void {
    if (res.headersSent) return;
    const body = JSON.stringify({
      error: { code: error.code, message: error.message, retryable: error.retryable },
    });
    res.writeHead(statusForCode(error.code), {
      'content-type': 'application/json',
      'x-rpc-codec': 'json',
      'content-length': Buffer.byteLength(body),
      ...extra,
    });
    res.end(body);
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const sink = this.sink!;
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q >= 0 ? url.slice(0, q) : url;
    let method: string;
    let toto = false;
    if (path.startsWith(`${this.base}/rpc/`)) {
      try {
        method = decodeURIComponent(path.slice(this.base.length + 5));
      } catch {
        return this.fail(res, new WorkerRpcError('BAD_FRAME', 'invalid method path'));
      }
    } else if (
      (path === this.base || path === `${this.base}/` || (this.base === '' && path === '/')) &&
      this.options.toto !== false
    ) {
      method = '';
      toto = true;
    } else {
      sink.rejected(new WorkerRpcError('NOT_FOUND', `no route ${path}`));
      return this.fail(res, new WorkerRpcError('NOT_FOUND', `no route ${path.slice(0, 200)}`));
    }
    if (req.method !== 'POST')
      return this.fail(res, new WorkerRpcError('UNSUPPORTED', 'use POST'), { allow: 'POST' });
    if (this.token) {
      const given = Buffer.from(String(req.headers.authorization ?? ''));
      if (given.byteLength !== this.token.byteLength || !timingSafeEqual(given, this.token)) {
        sink.rejected(new WorkerRpcError('UNAUTHENTICATED', 'missing or wrong bearer token'));
        return this.fail(
          res,
          new WorkerRpcError('UNAUTHENTICATED', 'missing or wrong bearer token'),
          { 'www-authenticate': 'Bearer' },
        );
      }
    }
    const h = req.headers;
    const declared = Number(h['content-length']);
    if (declared > sink.maxBodyBytes) {
      sink.rejected(new WorkerRpcError('FRAME_TOO_LARGE', 'body too large'));
      this.fail(
        res,
        new WorkerRpcError(
          'FRAME_TOO_LARGE',
          `body of ${declared} bytes exceeds ${sink.maxBodyBytes}`,
        ),
        { connection: 'close' },
      );
      req.resume();
      return;
    }
    const idHeader = h['x-request-id'];
    const id =
      typeof idHeader === 'string' && HEX_ID.test(idHeader)
        ? Buffer.from(idHeader, 'hex')
        : randomBytes(16);
    let budgetMs = -1;
    const timeoutHeader = h['x-rpc-timeout-ms'];
    if (typeof timeoutHeader === 'string') {
      budgetMs = Number(timeoutHeader);
      if (!(Number.isFinite(budgetMs) && budgetMs >= 0))
        return this.fail(
          res,
          new WorkerRpcError('BAD_FRAME', 'x-rpc-timeout-ms must be a number >= 0'),
        );
    }
    // the toolkit's canonical budget header (a malformed one is ignored); the smaller wins
    const canonical = h[DEADLINE_HEADER] === undefined ? undefined : readDeadlineHeader(h);
    if (canonical !== undefined && (budgetMs < 0 || canonical < budgetMs)) budgetMs = canonical;
    const attempt = Math.min(255, Math.max(0, Number(h['x-rpc-attempt']) | 0));
    let meta: Record<string, string> | undefined;
    const metaHeader = h['x-rpc-meta'];
    if (typeof metaHeader === 'string') {
      try {
        const parsed: unknown = JSON.parse(Buffer.from(metaHeader, 'base64url').toString('utf8'));
        if (
          typeof parsed !== 'object' ||
          parsed === null ||
          Array.isArray(parsed) ||
          Object.values(parsed).some(v => typeof v !== 'string')
        )
          throw new Error('not a string map');
        meta = Object.assign(Object.create(null) as Record<string, string>, parsed);
      } catch {
        return this.fail(
          res,
          new WorkerRpcError('BAD_FRAME', 'x-rpc-meta must be base64url JSON of strings'),
        );
      }
    }
    const key = typeof h['idempotency-key'] === 'string' ? h['idempotency-key'].slice(0, 255) : '';
    const contentEncoding =
      typeof h['content-encoding'] === 'string' ? h['content-encoding'].trim().toLowerCase() : '';
    const compressed = contentEncoding !== '' && contentEncoding !== 'identity';
    const acceptEncoding =
      typeof h['accept-encoding'] === 'string'
        ? h['accept-encoding'].split(',')[0]!.split(';')[0]!.trim().toLowerCase()
        : '';
    const codec = toto ? '' : codecFromHeaders(h['x-rpc-codec'], h['content-type']) || 'json';
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      if (tooLarge) return;
      size += chunk.byteLength;
      if (size > sink.maxBodyBytes) {
        tooLarge = true;
        chunks.length = 0;
        sink.rejected(new WorkerRpcError('FRAME_TOO_LARGE', 'body too large'));
        this.fail(
          res,
          new WorkerRpcError('FRAME_TOO_LARGE', `body exceeds ${sink.maxBodyBytes} bytes`),
          { connection: 'close' },
        );
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', () => {});
    req.on('end', () => {
      if (tooLarge) return;
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
      let answered = false;
      res.on('close', () => {
        if (!answered) sink.cancel(id);
      });
      const request: IncomingRequest = {
        id,
        method,
        attempt,
        budgetMs,
        idempotent: h['x-rpc-idempotent'] === '1',
        key,
        meta,
        ack: h['x-rpc-ack'] === 'delivery',
        codec,
        encoding: compressed
          ? contentEncoding
          : acceptEncoding === 'identity' || acceptEncoding === '*'
            ? ''
            : acceptEncoding,
        compressed,
        body,
        toto,
        totoHttp: toto,
        wrapErrors: true,
        respond: (kind, replyBody, info) => {
          if (answered || res.headersSent) return;
          // one response per HTTP request: an ACK the caller did not ask for would hide the result
          if (kind === Kind.ACK && !request.ack && !toto) return;
          answered = true;
          this.respond(res, kind, replyBody, info);
        },
      };
      sink.request(request);
    });
  }

  private respond(
    res: ServerResponse,
    kind: KindValue,
    body: Uint8Array | undefined,
    info: ResponseInfo,
  ): void {
    const status = kind === Kind.ACK ? 202 : kind === Kind.ERR ? statusForCode(info.code) : 200;
    const headers: Record<string, string | number> = {
      'content-type': CODEC_MIME[info.codec] ?? 'application/octet-stream',
      'x-rpc-codec': info.codec,
      'content-length': body?.byteLength ?? 0,
    };
    if (info.credit >= 0) headers['x-rpc-credit'] = info.credit;
    if (info.compressed) headers['content-encoding'] = info.encoding;
    if (info.retryAfterMs !== undefined)
      headers['retry-after'] = Math.ceil(info.retryAfterMs / 1000);
    if (this.draining) headers.connection = 'close';
    res.writeHead(status, headers);
    res.end(body);
  }

  drain(): void {
    this.draining = true;
    this.server?.close();
    this.server?.closeIdleConnections();
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    this.draining = true;
    await new Promise<void>(resolve => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
}
