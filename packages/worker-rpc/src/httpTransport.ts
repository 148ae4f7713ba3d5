import { timerOptions } from './internal/durationOption.js';
import { validateAddress } from './validateAddress.js';
import { Pool } from 'undici';
import { DEADLINE_HEADER } from '@x/resilience';
import { WorkerRpcError } from './errors.js';
import { idHex, idKey, Kind } from './protocol.js';
import type {
  Channel,
  ChannelContext,
  ChannelEvents,
  OutgoingRequest,
  Transport,
} from './transport.js';

/** Options of {@link httpTransport}. */
export interface HttpTransportOptions {
  /** `wrpc/1` (default: `POST {base}/rpc/{method}`) or `toto` (`POST {address}` with `{ method, parameters }`). */
  readonly protocol?: 'wrpc/1' | 'wrpc' | 'toto';
  /** Bearer token sent as `authorization: Bearer <token>`. */
  readonly token?: string;
  /** Extra request headers. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Keep-alive connections per endpoint. Default 64. */
  readonly connections?: number;
  /** Idle keep-alive timeout (ms). Default 4 000. */
  readonly keepAliveTimeoutMs?: number;
  /** Time to wait for response headers when the call has no deadline (ms). Default 300 000. */
  readonly headersTimeoutMs?: number;
  /** undici connect options (TLS `ca`, `cert`, `key`, `rejectUnauthorized`, ...). */
  readonly connect?: Pool.Options['connect'];
}

const MIME_TO_CODEC: Record<string, string> = {
  'application/json': 'json',
  'application/msgpack': 'msgpack',
  'application/x-msgpack': 'msgpack',
  'application/vnd.msgpack': 'msgpack',
};

/** Codec named by a response's `x-rpc-codec` or `content-type`. */
export function codecFromHeaders(codecHeader: unknown, contentType: unknown): string {
  if (typeof codecHeader === 'string' && codecHeader) return codecHeader;
  if (typeof contentType === 'string') {
    const mime = contentType.split(';')[0]!.trim().toLowerCase();
    return MIME_TO_CODEC[mime] ?? '';
  }
  return '';
}

/** The error an HTTP status means when the body does not say (also used by the HTTP worker in reverse). */
export function errorFromStatus(
  status: number,
  endpoint: string,
  retryAfterMs?: number,
): WorkerRpcError {
  const opts = { remote: true, endpoint, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
  switch (status) {
    case 400:
      return new WorkerRpcError('INVALID_ARGUMENT', `worker answered ${status}`, opts);
    case 401:
    case 403:
      return new WorkerRpcError('UNAUTHENTICATED', `worker answered ${status}`, opts);
    case 404:
      return new WorkerRpcError('NOT_FOUND', `worker answered ${status}`, opts);
    case 408:
      return new WorkerRpcError('TIMEOUT', `worker answered ${status}`, opts);
    case 413:
      return new WorkerRpcError('FRAME_TOO_LARGE', `worker answered ${status}`, opts);
    case 415:
      return new WorkerRpcError('UNSUPPORTED', `worker answered ${status}`, opts);
    case 429:
      return new WorkerRpcError('OVERLOADED', `worker answered ${status}`, opts);
    case 499:
      return new WorkerRpcError('CANCELLED', `worker answered ${status}`, opts);
    case 502:
    case 503:
      return new WorkerRpcError('UNAVAILABLE', `worker answered ${status}`, opts);
    case 504:
      return new WorkerRpcError('DEADLINE_EXCEEDED', `worker answered ${status}`, opts);
    default:
      return new WorkerRpcError('INTERNAL', `worker answered ${status}`, opts);
  }
}

function retryAfter(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/**
 * The HTTP client transport (toto's `HTTPWorkerConnection`) on undici: one keep-alive `Pool` per
 * endpoint, `POST {base}/rpc/{method}` with `x-request-id`, `x-rpc-timeout-ms`, `x-rpc-attempt`,
 * `idempotency-key`, `x-rpc-meta`, `content-type`/`content-encoding` and `accept-encoding`. Error
 * statuses reject (toto resolved them as values); responses are decompressed (toto never did);
 * cancelling aborts the request, which aborts the handler's signal on the worker.
 */
export function httpTransport(options: HttpTransportOptions = {}): Transport {
  timerOptions(options, ['keepAliveTimeoutMs', 'headersTimeoutMs']);
  const protocol = options.protocol === 'toto' ? 'toto' : 'wrpc/1';
  const channels = new Set<HttpChannel>();
  return {
    name: 'http',
    protocol,
    checkAddress: address => validateAddress(address, 'http-connect'),
    open(address, events, context) {
      const channel = new HttpChannel(
        validateAddress(address, 'http-connect'),
        events,
        context,
        options,
        protocol === 'toto',
        channels,
      );
      channels.add(channel);
      return channel;
    },
    async close() {
      await Promise.all([...channels].map(c => c.close()));
    },
  };
}

class HttpChannel implements Channel {
  private readonly pool: Pool;
  private readonly basePath: string;
  private readonly inFlight = new Map<string, AbortController>();
  private readonly fixedHeaders: Record<string, string>;
  private closed = false;

  constructor(
    readonly address: string,
    private readonly events: ChannelEvents,
    private readonly context: ChannelContext,
    private readonly options: HttpTransportOptions,
    private readonly toto: boolean,
    private readonly registry: Set<HttpChannel>,
  ) {
    let url: URL;
    try {
      url = new URL(address);
    } catch {
      throw new TypeError(`invalid HTTP worker address: ${address}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new TypeError(`HTTP worker address must be http(s)://, got ${address}`);
    this.basePath = url.pathname.replace(/\/+$/, '') + url.search;
    this.pool = new Pool(url.origin, {
      connections: options.connections ?? 64,
      pipelining: 1,
      keepAliveTimeout: options.keepAliveTimeoutMs ?? 4_000,
      ...(options.connect ? { connect: options.connect } : {}),
    });
    this.fixedHeaders = { ...options.headers };
    if (options.token) this.fixedHeaders.authorization = `Bearer ${options.token}`;
    queueMicrotask(() => {
      if (!this.closed) events.state(this, 'up');
    });
  }

  send(request: OutgoingRequest): WorkerRpcError | undefined {
    if (this.closed)
      return new WorkerRpcError('CLOSED', 'channel closed', { endpoint: this.address });
    const key = idKey(request.id);
    const controller = new AbortController();
    this.inFlight.get(key)?.abort();
    this.inFlight.set(key, controller);
    const budget = request.budgetMs();
    const headers: Record<string, string> = {
      ...this.fixedHeaders,
      'content-type': request.contentType,
      'x-request-id': idHex(request.id),
      'x-rpc-attempt': String(request.attempt),
    };
    if (!this.toto) headers['x-rpc-codec'] = request.codec;
    if (budget >= 0) {
      // the toolkit's header, and the older one for workers that only know it
      headers[DEADLINE_HEADER] = headers['x-rpc-timeout-ms'] = String(Math.ceil(budget));
    }
    // toto's HTTPWorkerConnection sends its compressed body with only a Content-Type header
    // (toto/httpworkerconnection.py invoke): a toto worker decompresses every body itself
    if (request.compressed && !this.toto) headers['content-encoding'] = request.encoding;
    if (request.encoding && !this.toto) headers['accept-encoding'] = request.encoding;
    if (request.idempotent) headers['x-rpc-idempotent'] = '1';
    if (request.key) headers['idempotency-key'] = request.key;
    if (request.ack) headers['x-rpc-ack'] = 'delivery';
    if (request.meta)
      headers['x-rpc-meta'] = Buffer.from(JSON.stringify(request.meta)).toString('base64url');
    const path = this.toto
      ? this.basePath || '/'
      : `${this.basePath}/rpc/${encodeURIComponent(request.method)}`;
    const headersTimeout =
      budget >= 0 ? Math.ceil(budget) + 1_000 : (this.options.headersTimeoutMs ?? 300_000);
    void this.exchange(request.id, key, controller, path, headers, request.body, headersTimeout);
    return undefined;
  }

  private async exchange(
    id: Uint8Array,
    key: string,
    controller: AbortController,
    path: string,
    headers: Record<string, string>,
    body: Uint8Array,
    headersTimeout: number,
  ): Promise<void> {
    try {
      const res = await this.pool.request({
        method: 'POST',
        path,
        headers,
        body,
        signal: controller.signal,
        headersTimeout,
        bodyTimeout: headersTimeout,
      });
      const chunks: Buffer[] = [];
      let size = 0;
      res.body.on('error', () => {}); // destroyed below when too large; the error is reported as FRAME_TOO_LARGE
      const declared = Number(res.headers['content-length']);
      if (declared > this.context.maxBodyBytes) {
        res.body.destroy();
        throw new WorkerRpcError(
          'FRAME_TOO_LARGE',
          `reply of ${declared} bytes exceeds maxBodyBytes ${this.context.maxBodyBytes}`,
          { endpoint: this.address },
        );
      }
      for await (const chunk of res.body) {
        size += (chunk as Buffer).byteLength;
        if (size > this.context.maxBodyBytes) {
          res.body.destroy();
          throw new WorkerRpcError(
            'FRAME_TOO_LARGE',
            `reply exceeds maxBodyBytes ${this.context.maxBodyBytes}`,
            { endpoint: this.address },
          );
        }
        chunks.push(chunk as Buffer);
      }
      if (this.inFlight.get(key) === controller) this.inFlight.delete(key);
      const data = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
      const creditHeader = res.headers['x-rpc-credit'];
      const credit =
        typeof creditHeader === 'string' && /^\d+$/.test(creditHeader) ? Number(creditHeader) : -1;
      const encodingHeader = res.headers['content-encoding'];
      const encoding =
        typeof encodingHeader === 'string' && encodingHeader !== 'identity' ? encodingHeader : '';
      const codec = this.toto
        ? ''
        : codecFromHeaders(res.headers['x-rpc-codec'], res.headers['content-type']);
      const status = res.statusCode;
      if (status === 200 || status === 202) {
        this.events.reply(this, id, {
          kind: status === 202 ? Kind.ACK : Kind.RES,
          body: data,
          codec,
          encoding,
          compressed: encoding !== '',
          credit,
          wireEncoding: true,
        });
      } else {
        const fallbackError = errorFromStatus(
          status,
          this.address,
          retryAfter(res.headers['retry-after']),
        );
        this.events.reply(this, id, {
          kind: Kind.ERR,
          body: codec || this.toto ? data : undefined,
          codec,
          encoding,
          compressed: encoding !== '',
          credit,
          wireEncoding: true,
          wrapped: true,
          fallbackError,
        });
      }
    } catch (error) {
      if (this.inFlight.get(key) === controller) this.inFlight.delete(key);
      if (controller.signal.aborted || this.closed) return; // cancelled by us: the call already settled
      const e =
        error instanceof WorkerRpcError
          ? error
          : new WorkerRpcError(
              'UNAVAILABLE',
              `HTTP request to ${this.address} failed: ${(error as Error).message}`,
              { cause: error, endpoint: this.address },
            );
      this.events.fail(this, id, e);
    }
  }

  cancel(request: OutgoingRequest): void {
    const key = idKey(request.id);
    const controller = this.inFlight.get(key);
    if (controller) {
      this.inFlight.delete(key);
      controller.abort();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.registry.delete(this);
    for (const controller of this.inFlight.values()) controller.abort();
    this.inFlight.clear();
    await this.pool.destroy().catch(() => {});
  }
}
