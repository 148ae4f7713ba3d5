import { traceForward } from './frontDoorSpan.js';
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher as UndiciDispatcher } from 'undici';
import {
  AbortedError,
  DEADLINE_HEADER,
  deadlineHeaderValue,
  readDeadlineHeader,
  timerQueue,
  type Clock,
  type Logger,
  type TimerQueue,
} from '@x/resilience';
import {
  DeadlineExceededError,
  DispatcherClosedError,
  InvalidRequestError,
  PayloadTooLargeError,
} from '../errors.js';
import type { RouteDecision } from '../routeDecision.js';
import type { HeaderList } from '../types.js';
import { AdminGate, type AdminCall } from './adminGate.js';
import { sendError } from './errorResponse.js';
import { pairs } from './headers.js';
import {
  readForwardedRequest,
  type Forward,
  type ForwardSettings,
  type ForwardedRequest,
} from './forwardedRequest.js';
import type { Instance } from './instance.js';
import { ProxyHandler } from './proxyHandler.js';
import { serveInProcess } from './serveInProcess.js';
import { refuseUpgrade, tunnelUpgrade } from './upgradeTunnel.js';
import type { Deadline, VersionPool } from './versionPool.js';

/** What the front door needs from its dispatcher. */
export interface FrontDoorHost {
  readonly clock: Clock;
  readonly log: Logger;
  readonly requestTimeoutMs: number;
  /** True once `start()` finished (instances up, events loaded). */
  readonly started: boolean;
  route(
    path: string,
    host: string | undefined,
    cookie: string | undefined,
    sourceIp: string,
    headers: () => HeaderList,
  ): RouteDecision;
  pool(decision: RouteDecision): VersionPool;
  /** Handles an admin API request (the token was checked). */
  admin: AdminCall;
  ensureStarted(): Promise<void>;
}

/** Normalized settings of a mounted front door. */
export interface FrontDoorHandlerSettings extends ForwardSettings {
  readonly adminPath: string | undefined;
  readonly adminToken: Buffer | undefined;
  /** Wrong admin tokens one client address may send per `adminFailureWindowMs` before 429. */
  readonly adminMaxFailures: number;
  readonly adminFailureWindowMs: number;
  readonly drainTimeoutMs: number;
}

/**
 * The HTTP front door as `node:http` listeners any server can mount: `handler(req, res, next?)`
 * for requests and `upgrade(req, socket, head)` for protocol upgrades (WebSocket). Requests go to
 * instances over undici (one pool per instance origin) or to in-process handlers, bodies streamed
 * both ways, with the dispatcher's deadline (`requestTimeoutMs`, shortened by
 * `x-request-timeout-ms`), `X-Served-By`, request ids, limits, smuggling checks and the admin API.
 */
export class FrontDoorHandler {
  /** Connections closed for a refused request: requests pipelined behind it are never served. */
  private readonly refused = new WeakSet<object>();
  /**
   * Responses of pipelined requests, queued (by Node) until the response before them ends. When
   * the connection closes first they never get it, and without help never emit 'close': the
   * request would count as in flight forever (close() waiting out drainTimeoutMs) and its work
   * would never be aborted.
   */
  private readonly queued = new WeakMap<object, Set<ServerResponse>>();
  /** Established upgrade tunnels: destroyed by close(). */
  private readonly tunnels = new Set<Duplex>();
  private inFlight = 0;
  private idle: (() => void) | undefined;
  private draining: Promise<void> | undefined;
  private readonly adminPrefix: string | undefined;
  private readonly adminGate: AdminGate | undefined;
  /** Request deadlines: entries of the clock's shared queue (one timer for every request). */
  readonly timers: TimerQueue;

  constructor(
    private readonly host: FrontDoorHost,
    readonly settings: FrontDoorHandlerSettings,
  ) {
    this.adminPrefix = settings.adminPath;
    this.timers = timerQueue(host.clock);
    this.adminGate =
      settings.adminToken === undefined ? undefined : sharedAdminGate(host, settings);
  }

  get requestIdHeader(): string {
    return this.settings.requestIdHeader;
  }

  get log(): Logger {
    return this.host.log;
  }

  get clock(): Clock {
    return this.host.clock;
  }

  get maxBodyBytes(): number {
    return this.settings.maxBodyBytes;
  }

  /**
   * True when the request is the dispatcher's: the admin path, a Host naming a module (or its
   * version or instance), or a dispatch rule that matches. Requests that would only fall back to
   * the default module are not. A Host the router refuses is not the dispatcher's either.
   */
  matches(req: IncomingMessage): boolean {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    if (this.isAdmin(path)) return true;
    try {
      const decision = this.host.route(
        path,
        req.headers.host,
        req.headers.cookie,
        req.socket.remoteAddress ?? '',
        () => [],
      );
      return decision.moduleSource === 'host' || decision.moduleSource === 'rule';
    } catch {
      return false;
    }
  }

  /**
   * A `node:http` request listener. With `next`, requests the dispatcher does not own
   * ({@link matches}) are passed on to it; without, every request is served (the default module
   * takes what no rule or Host claims).
   */
  readonly handler = (req: IncomingMessage, res: ServerResponse, next?: () => void): void => {
    if (next !== undefined && !this.matches(req)) {
      next();
      return;
    }
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
    if (res.socket === null) this.queue(req, res);
    if (this.draining !== undefined)
      return this.reject(res, new DispatcherClosedError(), undefined);
    if (!this.host.started) {
      this.host.ensureStarted().then(
        () => this.handleSafely(req, res),
        error => this.reject(res, error, undefined),
      );
      return;
    }
    this.handleSafely(req, res);
  };

  /**
   * A `node:http` `upgrade` listener: routes the request like any other and tunnels the socket to
   * an HTTP instance once it answers 101 (`X-Served-By` on the 101). In-process instances take no
   * upgrades (501). The deadline bounds the wait for the 101 only; the tunnel lasts until either
   * side closes or the front door closes.
   */
  readonly upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    if (this.draining !== undefined) {
      socket.destroy();
      return;
    }
    const start = this.host.started ? Promise.resolve() : this.host.ensureStarted();
    start
      .then(() => {
        const request = readForwardedRequest(req, this.settings);
        if (this.isAdmin(request.path))
          throw new InvalidRequestError('the admin API takes no protocol upgrade');
        const decision = this.decide(req, request);
        return tunnelUpgrade(
          {
            req,
            socket,
            head,
            request,
            pool: this.host.pool(decision),
            decision,
            deadline: this.deadline(request),
            tunnels: this.tunnels,
          },
          { clock: this.host.clock, log: this.host.log, requestIdHeader: this.requestIdHeader },
        );
      })
      .catch((error: unknown) => refuseUpgrade(socket, error, this.host.log));
  };

  /** Stops taking requests and waits (up to `drainTimeoutMs`) for those in flight; then cuts tunnels. */
  close(): Promise<void> {
    this.draining ??= (async () => {
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
      for (const tunnel of this.tunnels) tunnel.destroy();
    })();
    return this.draining;
  }

  /** Answers an error before any response byte was sent (or cuts the response). */
  reject(res: ServerResponse, error: unknown, requestId: string | undefined, close = false): void {
    if (close) this.refused.add(res.req.socket);
    sendError(res, error, {
      requestIdHeader: this.requestIdHeader,
      requestId,
      close,
      log: this.host.log,
    });
  }

  private isAdmin(path: string): boolean {
    const prefix = this.adminPrefix;
    return prefix !== undefined && (path === prefix || path.startsWith(prefix + '/'));
  }

  private queue(req: IncomingMessage, res: ServerResponse): void {
    // pipelined behind another response: see `queued`
    const socket = req.socket;
    let queued = this.queued.get(socket);
    if (queued === undefined) {
      const set = new Set<ServerResponse>();
      this.queued.set(socket, (queued = set));
      socket.once('close', () => {
        // responses still queued behind another one never get the socket, and Node never emits
        // 'close' on them: emit it, so their work is aborted and counted as finished
        for (const waiting of set) {
          if (waiting.socket === null && !waiting.writableFinished) {
            waiting.destroy();
            waiting.emit('close');
          }
        }
      });
    }
    queued.add(res);
    res.once('close', () => queued.delete(res));
  }

  private handleSafely(req: IncomingMessage, res: ServerResponse): void {
    try {
      this.handle(req, res);
    } catch (error) {
      this.reject(res, error, undefined);
    }
  }

  private decide(req: IncomingMessage, request: ForwardedRequest): RouteDecision {
    return this.host.route(
      request.path,
      req.headers.host,
      req.headers.cookie,
      request.sourceIp,
      () => pairs(request.headers),
    );
  }

  /**
   * The request's deadline: the caller's budget (x-request-timeout-ms) when it is smaller than
   * requestTimeoutMs; a malformed one is ignored.
   */
  private deadline(request: ForwardedRequest): Deadline {
    const { requestTimeoutMs } = this.host;
    const timeoutMs =
      request.budget === undefined
        ? requestTimeoutMs
        : (readDeadlineHeader({ [DEADLINE_HEADER]: request.budget }, { maxMs: requestTimeoutMs }) ??
          requestTimeoutMs);
    return { at: this.host.clock.now() + timeoutMs, timeoutMs };
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    let request: ForwardedRequest;
    try {
      request = readForwardedRequest(req, this.settings);
    } catch (error) {
      return this.reject(res, error, undefined, true);
    }
    const { requestId } = request;
    if (this.adminGate !== undefined && this.isAdmin(request.path)) {
      const subPath = request.path.slice(this.adminPrefix!.length) || '/';
      this.adminGate
        .serve(req, res, request.url, subPath, requestId, request.sourceIp)
        .catch((error: unknown) => this.reject(res, error, requestId));
      return;
    }
    const decision = this.decide(req, request);
    const pool = this.host.pool(decision);
    const deadline = this.deadline(request);
    const maxBodyBytes = this.settings.maxBodyBytes;
    const body = request.hasBody ? (request.chunked ? limitBody(req, maxBodyBytes) : req) : null;
    const forward: Forward = {
      pool,
      res,
      method: request.method,
      url: request.url,
      headers: request.headers,
      body,
      requestId,
      decision,
      sourceIp: request.sourceIp,
      startedAt: deadline.at - deadline.timeoutMs,
      deadline,
    };
    if (decision.instance === undefined) {
      let acquired: Instance | Promise<Instance>;
      try {
        acquired = pool.acquire(deadline, undefined);
      } catch (error) {
        return this.reject(res, error, requestId);
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
      this.reject(res, error, requestId);
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
    traceForward(method, url, headers, decision, instance.id, res);
    if (upstream === undefined) {
      serveInProcess(instance, forward, this);
      return;
    }
    const handler = new ProxyHandler(
      this,
      pool,
      instance,
      res,
      requestId,
      decision.setCookie,
      startedAt,
    );
    if (leftMs <= 0) {
      handler.onResponseError(undefined, new DeadlineExceededError(deadline.timeoutMs));
      return;
    }
    handler.armDeadline(deadline.at, deadline.timeoutMs);
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
          // with upstream.pipelining > 1, bodiless requests may follow this one on its
          // connection before its head is back (undici keeps non-idempotent ones apart)
          blocking: body !== null,
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
  }
}

async function* limitBody(req: IncomingMessage, limit: number): AsyncIterable<Uint8Array> {
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new PayloadTooLargeError(limit);
    yield chunk;
  }
}

/** Admin gates of each dispatcher, by token and lockout settings: see {@link sharedAdminGate}. */
const adminGates = new WeakMap<FrontDoorHost, Map<string, AdminGate>>();

/**
 * The admin gate of a front door. The doors of one dispatcher (mounted and listening) with the
 * same token and lockout settings share one gate, so a client address gets `adminMaxFailures`
 * wrong tokens in all, not that many per door.
 */
function sharedAdminGate(host: FrontDoorHost, settings: FrontDoorHandlerSettings): AdminGate {
  const token = settings.adminToken!;
  let gates = adminGates.get(host);
  if (gates === undefined) adminGates.set(host, (gates = new Map()));
  const key = [
    createHash('sha256').update(token).digest('hex'),
    settings.adminMaxFailures,
    settings.adminFailureWindowMs,
    settings.requestIdHeader,
  ].join(' ');
  let gate = gates.get(key);
  if (gate === undefined) {
    gate = new AdminGate(
      {
        token,
        maxFailures: settings.adminMaxFailures,
        failureWindowMs: settings.adminFailureWindowMs,
        requestIdHeader: settings.requestIdHeader,
        clock: host.clock,
      },
      (method, path, query, body) => host.admin(method, path, query, body),
      () => host.ensureStarted(),
    );
    gates.set(key, gate);
  }
  return gate;
}
