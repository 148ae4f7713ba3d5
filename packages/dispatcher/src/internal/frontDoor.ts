import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Dispatcher as UndiciDispatcher } from 'undici';
import {
  AbortedError,
  DEADLINE_HEADER,
  deadlineHeaderValue,
  isXError,
  readDeadlineHeader,
  keyed,
  rateLimit,
  type Clock,
  type KeyedPolicy,
  type Logger,
  type RateLimiter,
} from '@x/resilience';
import {
  BackendError,
  DeadlineExceededError,
  DispatcherError,
  InvalidRequestError,
  NoCapacityError,
  PayloadTooLargeError,
  TooManyAttemptsError,
  TooManyHeadersError,
} from '../errors.js';
import type { RouteDecision } from '../routeDecision.js';
import type { HeaderList } from '../types.js';
import { HOP_BY_HOP, connectionTokens } from './headers.js';
import { InProcessRequest, normalizeResponse } from './inProcessRequest.js';
import type { Instance } from './instance.js';
import type { TrustedProxies } from './trustedProxies.js';
import { unmap } from './trustedProxies.js';
import type { Deadline, VersionPool } from './versionPool.js';

/** What the front door needs from its dispatcher. */
export interface FrontDoorHost {
  readonly clock: Clock;
  readonly log: Logger;
  readonly requestTimeoutMs: number;
  route(
    path: string,
    host: string | undefined,
    cookie: string | undefined,
    sourceIp: string,
    headers: () => HeaderList,
  ): RouteDecision;
  pool(decision: RouteDecision): VersionPool;
  /** Handles an admin API request (the token was checked). */
  admin(
    method: string,
    path: string,
    query: URLSearchParams,
    body: unknown,
  ): Promise<{ status: number; body: unknown }>;
  ensureStarted(): Promise<void>;
}

/** Normalized front door settings. */
export interface FrontDoorSettings {
  readonly port: number;
  readonly host: string;
  readonly trustedProxies: TrustedProxies;
  readonly maxHeaderBytes: number;
  readonly maxBodyBytes: number;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly maxConnections: number;
  readonly requestIdHeader: string;
  readonly adminPath: string | undefined;
  readonly adminToken: Buffer | undefined;
  /** Wrong admin tokens one client address may send per `adminFailureWindowMs` before 429. */
  readonly adminMaxFailures: number;
  readonly adminFailureWindowMs: number;
  readonly drainTimeoutMs: number;
}

const JSON_TYPE = 'application/json; charset=utf-8';
/** Largest admin API request body; more is a 413 `PAYLOAD_TOO_LARGE`. */
export const ADMIN_BODY_LIMIT = 65_536;
/**
 * Most header lines a request may have (431 `TOO_MANY_HEADERS` beyond). Node keeps only the first
 * 2 000 in `rawHeaders` (`server.maxHeadersCount`), which would hide a second `Host` or a
 * `Content-Length` from the smuggling checks; this bound is below that, so nothing is hidden.
 */
export const MAX_REQUEST_HEADERS = 1000;
/** Response header naming the instance that answered: `module/version/instance`. */
export const SERVED_BY_HEADER = 'x-served-by';
const SERVED_BY = SERVED_BY_HEADER;

/**
 * The HTTP front door: `node:http` in, undici out (one pool per instance origin), bodies streamed
 * both ways, hop-by-hop headers stripped, forwarding headers only from trusted proxies, request
 * ids, limits, timeouts, smuggling checks and a token-protected admin API.
 */
/** An admitted request on its way to an instance of `pool`. */
interface Forward {
  readonly pool: VersionPool;
  readonly res: ServerResponse;
  readonly method: string;
  readonly url: string;
  /** Request headers to forward, as a flat name/value list (hop-by-hop headers stripped). */
  readonly headers: string[];
  readonly body: IncomingMessage | AsyncIterable<Uint8Array> | null;
  readonly requestId: string;
  readonly decision: RouteDecision;
  readonly sourceIp: string;
  /** Clock time the request was admitted (for the instance's latency). */
  readonly startedAt: number;
  /** When it must be answered: time spent waiting for an instance counts. */
  readonly deadline: Deadline;
}

export class FrontDoor {
  readonly server: Server;
  private readonly sockets = new Set<Socket>();
  /** Connections closed for a refused request: requests pipelined behind it are never served. */
  private readonly refused = new WeakSet<Socket>();
  /**
   * Responses of pipelined requests, queued (by Node) until the response before them ends. When
   * the connection closes first they never get it, and without help never emit 'close': the
   * request would count as in flight forever (close() waiting out drainTimeoutMs) and its work
   * would never be aborted.
   */
  private readonly queued = new WeakMap<Socket, Set<ServerResponse>>();
  private inFlight = 0;
  private idle: (() => void) | undefined;
  private closing: Promise<void> | undefined;
  private readonly adminPrefix: string | undefined;
  private readonly adminDigest: Buffer | undefined;
  /** Failed admin token attempts per client address: a token bucket each (bounded, idle-evicted). */
  private readonly adminFailures: KeyedPolicy<RateLimiter>;

  constructor(
    private readonly host: FrontDoorHost,
    readonly settings: FrontDoorSettings,
  ) {
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
      (req, res) => this.onRequest(req, res),
    );
    this.server.maxConnections = settings.maxConnections;
    this.server.on('clientError', (error, socket) => this.onClientError(error, socket as Socket));
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => {
        this.sockets.delete(socket);
        // responses still queued behind another one never get the socket, and Node never emits
        // 'close' on them: emit it, so their work is aborted and counted as finished
        for (const res of this.queued.get(socket) ?? []) {
          if (res.socket === null && !res.writableFinished) {
            res.destroy();
            res.emit('close');
          }
        }
      });
    });
    this.adminPrefix = settings.adminPath;
    this.adminDigest = settings.adminToken ? sha256(settings.adminToken) : undefined;
    const perSecond = settings.adminMaxFailures / (settings.adminFailureWindowMs / 1000);
    this.adminFailures = keyed(
      () => '',
      () => rateLimit({ perSecond, burst: settings.adminMaxFailures, clock: host.clock }),
      { maxKeys: 10_000, idleTtlMs: settings.adminFailureWindowMs, clock: host.clock },
    );
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
      if (this.inFlight > 0) {
        await new Promise<void>(resolve => {
          const timer = setTimeout(resolve, this.settings.drainTimeoutMs);
          timer.unref();
          this.idle = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      this.server.closeAllConnections();
      for (const socket of this.sockets) socket.destroy();
      await closed;
    })();
    return this.closing;
  }

  private onClientError(error: Error & { code?: string }, socket: Socket): void {
    if (
      !socket.writable ||
      (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent
    ) {
      socket.destroy();
      return;
    }
    let status = 400;
    let reason = 'Bad Request';
    if (error.code === 'HPE_HEADER_OVERFLOW') {
      status = 431;
      reason = 'Request Header Fields Too Large';
    } else if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      status = 408;
      reason = 'Request Timeout';
    } else if (error.code === 'ECONNRESET' || error.code === 'EPIPE') {
      socket.destroy();
      return;
    }
    const body = JSON.stringify({
      error: {
        code:
          status === 400
            ? 'INVALID_REQUEST'
            : status === 431
              ? 'HEADERS_TOO_LARGE'
              : 'REQUEST_TIMEOUT',
        message: reason,
      },
    });
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: ${JSON_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
    socket.destroySoon?.();
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    // Node's parser emits every request of a pipelined batch, also those after a refused one
    // (e.g. a smuggled request after an ambiguous body): the connection closes unanswered
    if (this.refused.has(req.socket)) {
      req.resume();
      return;
    }
    this.inFlight++;
    let done = false;
    const finished = () => {
      if (done) return;
      done = true;
      // answered before the request body was read to its end: the rest of the body would be read
      // as the next request, so the connection cannot be reused
      if (!req.complete) req.socket?.destroySoon();
      if (--this.inFlight === 0 && this.idle) this.idle();
    };
    res.on('close', finished);
    if (res.socket === null) {
      // pipelined behind another response: see `queued`
      const socket = req.socket;
      let queued = this.queued.get(socket);
      if (queued === undefined) this.queued.set(socket, (queued = new Set()));
      queued.add(res);
      res.once('close', () => queued.delete(res));
    }
    try {
      this.handle(req, res);
    } catch (error) {
      this.fail(res, error, undefined);
    }
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const settings = this.settings;
    const headers = req.headers;
    const url = req.url ?? '';
    const method = req.method ?? 'GET';
    if (req.rawHeaders.length / 2 > MAX_REQUEST_HEADERS)
      return this.reject(
        res,
        new TooManyHeadersError(MAX_REQUEST_HEADERS, req.rawHeaders.length / 2),
        undefined,
        true,
      );
    // HTTP/1.x only: a CR or LF in the request target makes the parser read the request line as
    // HTTP/0.9 and the rest of it as headers, which would be forwarded (header injection)
    if (req.httpVersionMajor !== 1) {
      return this.reject(
        res,
        new InvalidRequestError(`unsupported HTTP version ${req.httpVersion}`),
        undefined,
        true,
      );
    }
    // request smuggling: a body length must be unambiguous
    const te = headers['transfer-encoding'];
    const cl = headers['content-length'];
    if (te !== undefined && (cl !== undefined || te.toLowerCase() !== 'chunked')) {
      return this.reject(
        res,
        new InvalidRequestError('conflicting or unsupported Transfer-Encoding / Content-Length'),
        undefined,
        true,
      );
    }
    if (url.charCodeAt(0) !== 47 /* / */) {
      return this.reject(
        res,
        new InvalidRequestError('request target must be a path (origin-form)'),
        undefined,
        true,
      );
    }
    let contentLength = 0;
    if (cl !== undefined) {
      contentLength = Number(cl);
      if (!(contentLength >= 0))
        return this.reject(res, new InvalidRequestError('bad Content-Length'), undefined, true);
      if (contentLength > settings.maxBodyBytes)
        return this.reject(res, new PayloadTooLargeError(settings.maxBodyBytes), undefined, true);
    }
    const hasBody = te !== undefined || contentLength > 0;
    const remote = req.socket.remoteAddress ?? '';
    const trusted = !settings.trustedProxies.empty && settings.trustedProxies.has(remote);

    // headers for the instance: hop-by-hop and untrusted forwarding headers dropped
    const raw = req.rawHeaders;
    const out: string[] = [];
    let forwardedFor: string | undefined;
    let forwardedProto: string | undefined;
    let requestId: string | undefined;
    let connection: string | undefined;
    let contentLengths = 0;
    let hosts = 0;
    let budget: string | string[] | undefined;
    const idHeader = settings.requestIdHeader;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      const lower = name.toLowerCase();
      if (HOP_BY_HOP.has(lower)) {
        if (lower === 'connection') connection = raw[i + 1];
        continue;
      }
      if (lower === 'content-length') contentLengths++;
      else if (lower === 'host') hosts++;
      else if (lower === 'expect')
        continue; // answered here (100-continue); undici refuses it
      else if (lower === 'x-forwarded-for') {
        if (trusted)
          forwardedFor = forwardedFor === undefined ? raw[i + 1] : `${forwardedFor}, ${raw[i + 1]}`;
        continue;
      } else if (lower === 'x-forwarded-proto') {
        if (trusted) forwardedProto = raw[i + 1];
        continue;
      } else if (lower === idHeader) {
        if (trusted) requestId = raw[i + 1];
        continue;
      } else if (lower === DEADLINE_HEADER) {
        // the caller's budget: read below, sent on shrunk by the time spent here
        budget = budget === undefined ? raw[i + 1] : [budget, raw[i + 1]!].flat();
        continue;
      }
      out.push(name, raw[i + 1]!);
    }
    if (contentLengths > 1)
      return this.reject(res, new InvalidRequestError('duplicate Content-Length'), undefined, true);
    if (hosts > 1)
      return this.reject(
        res,
        new InvalidRequestError('more than one Host header'),
        undefined,
        true,
      );
    if (requestId === undefined || requestId.length > 200) requestId = nextRequestId();
    const client = unmap(remote);
    out.push(
      'x-forwarded-for',
      forwardedFor === undefined ? client : `${forwardedFor}, ${client}`,
      'x-forwarded-proto',
      forwardedProto ?? 'http',
      idHeader,
      requestId,
    );
    const stripped = connection === undefined ? out : stripConnectionTokens(out, connection);

    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const sourceIp = trusted ? settings.trustedProxies.clientIp(remote, forwardedFor) : client;
    if (
      this.adminPrefix !== undefined &&
      (path === this.adminPrefix || path.startsWith(this.adminPrefix + '/'))
    ) {
      void this.serveAdmin(
        req,
        res,
        method,
        url,
        path.slice(this.adminPrefix.length) || '/',
        requestId,
        sourceIp,
      );
      return;
    }

    const decision = this.host.route(path, headers.host, headers.cookie, sourceIp, () =>
      pairs(stripped),
    );
    const pool = this.host.pool(decision);
    const clock = this.host.clock;
    const startedAt = clock.now();
    // The request's deadline: the caller's budget (x-request-timeout-ms) when it is smaller than
    // requestTimeoutMs; a malformed one is ignored.
    const timeoutMs =
      budget === undefined
        ? this.host.requestTimeoutMs
        : (readDeadlineHeader(
            { [DEADLINE_HEADER]: budget },
            { maxMs: this.host.requestTimeoutMs },
          ) ?? this.host.requestTimeoutMs);
    const deadline: Deadline = { at: startedAt + timeoutMs, timeoutMs };
    const body = hasBody ? (te !== undefined ? limitBody(req, settings.maxBodyBytes) : req) : null;

    const forward: Forward = {
      pool,
      res,
      method,
      url,
      headers: stripped,
      body,
      requestId,
      decision,
      sourceIp,
      startedAt,
      deadline,
    };
    if (decision.instance === undefined) {
      let acquired: Instance | Promise<Instance>;
      try {
        acquired = pool.acquire(deadline, undefined);
      } catch (error) {
        return this.reject(res, error, requestId, false);
      }
      if (acquired instanceof Promise) {
        void this.waitThenServe(acquired, undefined, forward);
        return;
      }
      this.serve(acquired, forward);
    } else {
      const abort = new AbortController();
      const onClose = () => abort.abort(new AbortedError());
      res.once('close', onClose);
      void this.waitThenServe(
        pool.acquireInstance(decision.instance, deadline, abort.signal),
        onClose,
        forward,
      );
    }
  }

  private async waitThenServe(
    acquired: Promise<Instance>,
    onClose: (() => void) | undefined,
    forward: Forward,
  ): Promise<void> {
    const { pool, res, requestId } = forward;
    let instance: Instance;
    try {
      instance = await acquired;
    } catch (error) {
      if (onClose) res.off('close', onClose);
      this.reject(res, error, requestId, false);
      return;
    }
    if (onClose) res.off('close', onClose);
    if (res.destroyed) {
      pool.release(instance, true, 0);
      return;
    }
    this.serve(instance, forward);
  }

  private serve(instance: Instance, forward: Forward): void {
    const { pool, res, method, url, headers, body, requestId, decision, startedAt, deadline } =
      forward;
    const upstream = instance.pool;
    // what is left after queueing for an instance goes on to it
    const leftMs = deadline.at - this.host.clock.now();
    if (leftMs > 0 && leftMs !== Infinity)
      headers.push(DEADLINE_HEADER, deadlineHeaderValue(leftMs));
    if (upstream !== undefined) {
      const remainingMs = leftMs;
      const handler = new ProxyHandler(
        this,
        pool,
        instance,
        res,
        requestId,
        decision.setCookie,
        startedAt,
      );
      if (remainingMs <= 0) {
        handler.onResponseError(undefined, new DeadlineExceededError(deadline.timeoutMs));
        return;
      }
      handler.armDeadline(remainingMs, deadline.timeoutMs);
      try {
        upstream.dispatch(
          {
            path: url,
            method,
            headers,
            body: body as UndiciDispatcher.DispatchOptions['body'],
            // once the head is here: at most the request timeout between two body chunks (a
            // long stream, e.g. server-sent events, may last longer than the deadline)
            bodyTimeout: deadline.timeoutMs,
          },
          handler,
        );
      } catch (error) {
        const code = (error as { code?: string }).code;
        // undici refuses what it cannot send: that is the client's request, not the instance
        handler.onResponseError(
          undefined,
          code === 'UND_ERR_INVALID_ARG' || code === 'UND_ERR_NOT_SUPPORTED'
            ? new InvalidRequestError(`request cannot be forwarded: ${(error as Error).message}`, {
                cause: error,
              })
            : (error as Error),
        );
      }
      return;
    }
    void this.serveInProcess(instance, forward);
  }

  private async serveInProcess(instance: Instance, forward: Forward): Promise<void> {
    const { pool, res, method, url, headers, body, requestId, decision, sourceIp, startedAt } =
      forward;
    const { deadline } = forward;
    const abort = new AbortController();
    const onClose = () => {
      if (!res.writableFinished) abort.abort(new AbortedError());
    };
    res.once('close', onClose);
    const clock = this.host.clock;
    const timer = clock.setTimeout(
      () => {
        abort.abort(
          new DeadlineExceededError(
            deadline.timeoutMs,
            `instance ${instance.servedBy} did not answer within the request deadline (${deadline.timeoutMs} ms)`,
          ),
        );
      },
      Math.max(0, deadline.at - clock.now()),
    );
    timer.unref?.();
    let ok = false;
    try {
      const handle = instance.runtime?.handle;
      if (!handle) throw new BackendError(`instance ${instance.id} is not running`);
      const request = new InProcessRequest(
        method,
        url,
        pairs(headers),
        body as AsyncIterable<Uint8Array> | null,
        sourceIp,
        'normal',
        instance.context,
        abort.signal,
        this.settings.maxBodyBytes,
      );
      let result;
      try {
        result = await untilAborted(Promise.resolve(handle(request)), abort.signal);
      } catch (error) {
        if (error instanceof DispatcherError) throw error;
        instance.context.log.error({ err: error }, 'in-process handler failed');
        throw new BackendError('the in-process handler failed', { cause: error });
      }
      const response = normalizeResponse(result);
      const flat: string[] = [];
      for (const [name, value] of response.headers) {
        if (HOP_BY_HOP.has(name)) continue;
        flat.push(name, value);
      }
      flat.push(this.settings.requestIdHeader, requestId, SERVED_BY, instance.servedBy);
      if (decision.setCookie) flat.push('set-cookie', decision.setCookie);
      const out = response.body;
      if (out instanceof Uint8Array) flat.push('content-length', String(out.byteLength));
      else if (out === null) flat.push('content-length', '0');
      clock.clearTimeout(timer); // the head is out: a stream may outlast the deadline
      res.writeHead(response.status, response.reason, flat);
      if (out === null) res.end();
      else if (out instanceof Uint8Array) res.end(out);
      else {
        for await (const chunk of out) {
          if (res.destroyed) break;
          if (!res.write(chunk))
            await new Promise<void>(resolve => {
              const go = () => {
                res.off('drain', go);
                res.off('close', go);
                resolve();
              };
              res.on('drain', go);
              res.on('close', go);
            });
        }
        res.end();
      }
      ok = response.status < 500;
    } catch (error) {
      this.fail(
        res,
        abort.signal.aborted ? abort.signal.reason : error,
        requestId,
        instance.servedBy,
      );
    } finally {
      clock.clearTimeout(timer);
      res.off('close', onClose);
      pool.release(instance, ok, this.host.clock.now() - startedAt);
    }
  }

  /** Answers an error before any response byte was sent (or cuts the response). */
  fail(
    res: ServerResponse,
    error: unknown,
    requestId: string | undefined,
    servedBy?: string,
  ): void {
    this.reject(res, error, requestId, false, servedBy);
  }

  private reject(
    res: ServerResponse,
    error: unknown,
    requestId: string | undefined,
    close: boolean,
    servedBy?: string,
  ): void {
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    if (isXError(error, 'ABORTED')) {
      res.destroy();
      return;
    }
    let status = 500;
    let code = 'INTERNAL';
    let message = 'internal error';
    if (error instanceof DispatcherError) {
      status = error.status;
      code = error.code;
      message = error.message;
    } else {
      this.host.log.error({ err: error }, 'front door failure');
    }
    const headers: Record<string, string> = {
      'content-type': JSON_TYPE,
      'cache-control': 'no-store',
    };
    if (requestId !== undefined) headers[this.settings.requestIdHeader] = requestId;
    if (servedBy !== undefined) headers[SERVED_BY] = servedBy;
    if (error instanceof NoCapacityError || error instanceof TooManyAttemptsError)
      headers['retry-after'] = String(Math.max(1, Math.ceil(error.retryAfterMs / 1000)));
    if (close) this.refused.add(res.req.socket);
    if (close || !res.req.complete) headers.connection = 'close';
    const body = JSON.stringify({ error: { code, message }, requestId });
    headers['content-length'] = String(Buffer.byteLength(body));
    try {
      res.writeHead(status, headers);
      res.end(body);
    } catch {
      res.destroy();
    }
  }

  private async serveAdmin(
    req: IncomingMessage,
    res: ServerResponse,
    method: string,
    url: string,
    subPath: string,
    requestId: string,
    clientIp: string,
  ): Promise<void> {
    try {
      // too many wrong tokens from this address: refused before the token is looked at, so the
      // answer tells a guesser nothing (the right token waits out the lockout too)
      const failures = this.adminFailures.peek(clientIp);
      if (failures !== undefined && failures.available < 1) {
        req.resume();
        throw new TooManyAttemptsError(failures.tryTake());
      }
      const auth = req.headers.authorization;
      // the scheme is case-insensitive (RFC 9110 §11.1)
      const token =
        auth !== undefined && /^bearer /i.test(auth) ? auth.slice(7) : req.headers['x-admin-token'];
      if (typeof token !== 'string' || token === '') {
        req.resume();
        return this.json(
          res,
          401,
          { error: { code: 'UNAUTHORIZED', message: 'admin API needs a bearer token' } },
          { 'www-authenticate': 'Bearer' },
        );
      }
      if (!timingSafe(this.adminDigest!, sha256(Buffer.from(token)))) {
        req.resume();
        this.adminFailures.get(clientIp).tryTake();
        return this.json(res, 403, { error: { code: 'FORBIDDEN', message: 'wrong admin token' } });
      }
      let body: unknown;
      if (method !== 'GET' && method !== 'HEAD') {
        if (Number(req.headers['content-length'] ?? 0) > ADMIN_BODY_LIMIT)
          throw new PayloadTooLargeError(ADMIN_BODY_LIMIT);
        const chunks: Buffer[] = [];
        let size = 0;
        for await (const chunk of req as AsyncIterable<Buffer>) {
          size += chunk.length;
          if (size > ADMIN_BODY_LIMIT) throw new PayloadTooLargeError(ADMIN_BODY_LIMIT);
          chunks.push(chunk);
        }
        const text = Buffer.concat(chunks).toString('utf8');
        if (text.trim() !== '') {
          try {
            body = JSON.parse(text);
          } catch {
            throw new InvalidRequestError('admin request body must be JSON');
          }
        }
      } else {
        req.resume();
      }
      await this.host.ensureStarted();
      const q = url.indexOf('?');
      const query = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
      const result = await this.host.admin(method, subPath, query, body);
      this.json(res, result.status, result.body, { [this.settings.requestIdHeader]: requestId });
    } catch (error) {
      this.reject(res, error, requestId, false);
    }
  }

  private json(
    res: ServerResponse,
    status: number,
    body: unknown,
    extra: Record<string, string> = {},
  ): void {
    if (res.headersSent) return;
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': JSON_TYPE,
      'cache-control': 'no-store',
      'content-length': String(Buffer.byteLength(text)),
      ...extra,
    });
    res.end(text);
  }

  /** For the proxy handler. */
  get requestIdHeader(): string {
    return this.settings.requestIdHeader;
  }
}

/** Streams an undici response into a Node `ServerResponse`. */
class ProxyHandler implements UndiciDispatcher.DispatchHandler {
  private controller: UndiciDispatcher.DispatchController | undefined;
  private settled = false;
  /** Body bytes announced by `content-length` (-1: unknown), and received so far. */
  private expected = -1;
  private received = 0;
  private ended = false;
  private readonly onClose: () => void;
  private onDrain: (() => void) | undefined;
  private deadlineTimer: ReturnType<Clock['setTimeout']> | undefined;

  constructor(
    private readonly door: FrontDoor,
    private readonly pool: VersionPool,
    private readonly instance: Instance,
    private readonly res: ServerResponse,
    private readonly requestId: string,
    private readonly setCookie: string | undefined,
    private readonly startedAt: number,
  ) {
    this.onClose = () => {
      if (!this.settled) this.controller?.abort(new AbortedError());
    };
    res.on('close', this.onClose);
  }

  /**
   * Settles the request `ms` from now if the instance has not sent its response head by then
   * (504 `DEADLINE_EXCEEDED`, the upstream request aborted): a hung instance never holds a request
   * past its deadline.
   */
  armDeadline(ms: number, timeoutMs: number): void {
    const clock = this.pool.clock;
    this.deadlineTimer = clock.setTimeout(() => {
      this.deadlineTimer = undefined;
      if (this.settled) return;
      const error = new DeadlineExceededError(
        timeoutMs,
        `instance ${this.instance.servedBy} did not answer within the request deadline (${timeoutMs} ms)`,
      );
      this.instance.requestTimedOut();
      this.onResponseError(undefined, error);
      this.controller?.abort(error);
    }, ms);
    this.deadlineTimer.unref?.();
  }

  onRequestStart(controller: UndiciDispatcher.DispatchController): void {
    this.controller = controller;
    if (this.res.destroyed || this.settled) controller.abort(new AbortedError());
  }

  onResponseStart(
    controller: UndiciDispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
    statusMessage?: string,
  ): void {
    if (statusCode < 200 || this.settled) return;
    if (this.deadlineTimer !== undefined) {
      this.pool.clock.clearTimeout(this.deadlineTimer);
      this.deadlineTimer = undefined;
    }
    this.instance.answered();
    const connection = headers.connection;
    const extra =
      connection !== undefined && connection !== 'keep-alive' && connection !== 'close'
        ? connectionTokens(Array.isArray(connection) ? connection.join(',') : connection)
        : undefined;
    // a flat [name, value, …] list: cheaper for writeHead than an object with deleted keys
    const flat: Array<string | string[]> = [];
    for (const name in headers) {
      const value = headers[name];
      if (
        value === undefined ||
        HOP_BY_HOP.has(name) ||
        (extra !== undefined && extra.includes(name))
      )
        continue;
      if (name === 'content-length' && typeof value === 'string') this.expected = Number(value);
      if (name === 'set-cookie' && this.setCookie !== undefined) continue;
      flat.push(name, value);
    }
    flat.push(this.door.requestIdHeader, this.requestId, SERVED_BY, this.instance.servedBy);
    if (this.setCookie !== undefined) {
      const existing = headers['set-cookie'];
      flat.push(
        'set-cookie',
        existing === undefined
          ? this.setCookie
          : [...(Array.isArray(existing) ? existing : [existing]), this.setCookie],
      );
    }
    try {
      this.res.writeHead(statusCode, statusMessage || undefined, flat as unknown as string[]);
    } catch (error) {
      controller.abort(
        new BackendError('the instance sent invalid response headers', { cause: error }),
      );
    }
  }

  onResponseData(controller: UndiciDispatcher.DispatchController, chunk: Buffer): void {
    if (this.settled) return;
    this.received += chunk.length;
    if (this.received === this.expected) {
      // the whole body is here: head, body and end leave in one write
      this.ended = true;
      this.res.end(chunk);
      return;
    }
    if (!this.res.write(chunk)) {
      controller.pause();
      this.onDrain ??= () => this.controller?.resume();
      this.res.once('drain', this.onDrain);
    }
  }

  onResponseEnd(): void {
    if (this.settled) return;
    if (!this.ended) this.res.end();
    this.finish(true);
  }

  onResponseError(
    _controller: UndiciDispatcher.DispatchController | undefined,
    error: Error,
  ): void {
    if (this.settled) return;
    const code = (error as { code?: string }).code;
    const mapped =
      error instanceof DispatcherError || isXError(error)
        ? error
        : code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT'
          ? (this.instance.requestTimedOut(),
            new DeadlineExceededError(
              0,
              `instance ${this.instance.servedBy} did not answer in time (${code})`,
            ))
          : new BackendError(
              `instance ${this.pool.module}/${this.pool.version}/${this.instance.id} failed: ${code ?? error.message}`,
              { cause: error },
            );
    this.door.fail(this.res, mapped, this.requestId, this.instance.servedBy);
    this.finish(false);
  }

  private finish(ok: boolean): void {
    if (this.settled) return;
    this.settled = true;
    if (this.deadlineTimer !== undefined) this.pool.clock.clearTimeout(this.deadlineTimer);
    this.res.off('close', this.onClose);
    this.pool.release(this.instance, ok, this.pool.clock.now() - this.startedAt);
  }
}

// Request ids: a random per-process prefix and a counter (unique, cheap; not secret).
const ID_PREFIX = randomUUID().slice(0, 24); // "xxxxxxxx-xxxx-4xxx-yxxx-": ids keep the UUID shape
let idCounter = 0;
function nextRequestId(): string {
  return `${ID_PREFIX}${(++idCounter).toString(16).padStart(12, '0')}`;
}

/** Settles like `promise`, or rejects with the signal's reason once it aborts. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      value => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      error => {
        signal.removeEventListener('abort', onAbort);
        reject(error as Error);
      },
    );
  });
}

function stripConnectionTokens(flat: string[], connection: string): string[] {
  const tokens = connectionTokens(connection);
  if (tokens.length === 0) return flat;
  const out: string[] = [];
  for (let i = 0; i < flat.length; i += 2) {
    if (tokens.includes(flat[i]!.toLowerCase())) continue;
    out.push(flat[i]!, flat[i + 1]!);
  }
  return out;
}

function pairs(flat: readonly string[]): HeaderList {
  const out: HeaderList = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i]!.toLowerCase(), flat[i + 1]!]);
  return out;
}

async function* limitBody(req: IncomingMessage, limit: number): AsyncIterable<Uint8Array> {
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new PayloadTooLargeError(limit);
    yield chunk;
  }
}

function sha256(value: Buffer): Buffer {
  return createHash('sha256').update(value).digest();
}

function timingSafe(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
