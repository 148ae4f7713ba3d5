import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  errorCode,
  isXError,
  readDeadlineHeader,
  timerQueue,
  type TimerEntry,
  type TimerQueue,
} from '@x/resilience';
import { deadLetterRecord, type DeadLetterSink } from './deadLetter.js';
import type { Entrypoint, EntryRef, RouteHandle } from './entrypoint.js';
import {
  CancelledError,
  HttpRequestError,
  RouteConfigError,
  type TranslationError,
} from './errors.js';
import { HttpRouter, type HttpMatch, type HttpMount, type PathParams } from './httpRouter.js';
import { httpStatusForError } from './httpStatusForError.js';
import { nextId } from './internal/ids.js';
import { checkInt, checkKeys, checkMs } from './internal/options.js';
import type { Meta, Outcome } from './outcome.js';

/** What `ctx.entryId` is for an HTTP delivery. */
export interface HttpExchange {
  readonly id: string;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
}

/** The request as `ctx.meta.http` carries it. */
export interface HttpMeta {
  readonly method: string;
  readonly path: string;
  /** The decoded path parameters (`/api/orders/:id` → `{ id }`; a wildcard is `'*'`). */
  readonly params: PathParams;
  readonly query: Readonly<Record<string, string>>;
  readonly headers: IncomingMessage['headers'];
  readonly remoteAddress: string | undefined;
}

/** Options of {@link httpEntrypoint}. */
export interface HttpEntrypointOptions {
  /**
   * Path pattern matched (query ignored), find-my-way syntax: exact (`/api/orders`), parameters
   * (`/api/orders/:id`), wildcard (`/files/*`). Default `'/'`.
   */
  readonly path?: string;
  /** Method(s) accepted, or `'*'` for any; others get 405 with `Allow`. Default `'POST'`. */
  readonly method?: string | readonly string[];
  /**
   * The router it mounts on, shared with other HTTP entrypoints so one server matches each
   * request's path once (mount `router.handler`). Default: a router of its own.
   */
  readonly router?: HttpRouter;
  /** Largest request body; beyond it 413. Default 1 MiB. */
  readonly maxBodyBytes?: number;
  /** Time allowed to receive the body; beyond it 408. Default 30 000 ms. */
  readonly bodyTimeoutMs?: number;
  /**
   * What the route receives: `'body'` (a `Buffer`, empty when none), `'query'` (the query string as
   * an object), `'params'` (the path parameters), or a function of the request, its body and the
   * path parameters. Default `'body'`.
   */
  readonly message?:
    | 'body'
    | 'query'
    | 'params'
    | ((req: IncomingMessage, body: Buffer, params: PathParams) => unknown);
  /** Listen on this port (0: any free one) at `start()`; without it, mount `handler`/`handle` in your server. */
  readonly port?: number;
  /** Host to listen on. Default `'127.0.0.1'`. */
  readonly host?: string;
  /** Entrypoint name. Default `'http <METHOD> <path>'`. */
  readonly name?: string;
  /** Where terminal failures are recorded (the client also gets the status). Default none. */
  readonly deadLetters?: DeadLetterSink;
  /** Put 5xx error messages in the response body (4xx messages always are). Default false. */
  readonly exposeErrors?: boolean;
  /** Overrides the status of an outcome (return undefined to keep {@link httpStatusFor}'s). */
  readonly status?: (outcome: Outcome) => number | undefined;
  /**
   * Largest caller budget accepted from `x-request-timeout-ms` (`DEADLINE_HEADER`): a request
   * carrying one gets the deadline `arrival + min(header, maxDeadlineMs)` (a malformed header is
   * ignored), which bounds the route's attempts and is `ctx.deadline` / `ctx.remainingMs` for
   * the target to forward. `Infinity`: no cap. Default 60 000 ms.
   */
  readonly maxDeadlineMs?: number;
}

const KEYS = [
  'path',
  'method',
  'router',
  'maxBodyBytes',
  'bodyTimeoutMs',
  'message',
  'port',
  'host',
  'name',
  'deadLetters',
  'exposeErrors',
  'status',
  'maxDeadlineMs',
];

/**
 * The status an outcome answers with:
 *
 * | outcome | status |
 * |---|---|
 * | success | 200 (204 when the target returned `undefined`) |
 * | deferred (async retry published) | 202 |
 * | failure, terminal, error with `status`/`statusCode` 400–599 | that status |
 * | failure, terminal, a known code (`HTTP_STATUS_BY_CODE`: `TRANSLATION_FAILED` 400, `UNAVAILABLE` 503, `TIMEOUT` 504, …) | its status |
 * | failure, terminal, anything else | 500 |
 * | failure, not terminal (overloaded, republish failed) | 503 |
 * | cancelled (stopping, handed back, killed) | 503 |
 */
export function httpStatusFor(outcome: Outcome): number {
  switch (outcome.kind) {
    case 'success':
      return outcome.value === undefined ? 204 : 200;
    case 'deferred':
      return 202;
    case 'cancelled':
      return 503;
    case 'failure':
      return outcome.terminal ? httpStatusForError(outcome.error) : 503;
  }
}

/**
 * An HTTP entrypoint on `node:http`: mount `handler` (or `handle`, which returns false when the
 * path does not match) in your server, or give `port` to listen on its own. The body is read with
 * a size and time limit, the route's outcome becomes the status ({@link httpStatusFor}); malformed
 * input answers 400/405/408/413 and never reaches the target. A client that disconnects aborts
 * `ctx.signal`. While stopping, requests get 503 with `connection: close`.
 */
export class HttpEntrypoint<M = Buffer> implements Entrypoint<M>, HttpMount {
  readonly kind = 'http';
  readonly name: string;
  readonly path: string;
  /** The methods accepted, comma-separated (`'*'`: any). */
  readonly method: string;
  readonly methods: readonly string[];
  /** The router it is mounted on (its own unless one was given). */
  readonly router: HttpRouter;
  readonly maxBodyBytes: number;
  readonly bodyTimeoutMs: number;
  readonly maxDeadlineMs: number;
  private readonly messageOption: NonNullable<HttpEntrypointOptions['message']>;
  private readonly port: number | undefined;
  private readonly host: string;
  private readonly deadLetters: DeadLetterSink | undefined;
  private readonly exposeErrors: boolean;
  private readonly statusOverride: HttpEntrypointOptions['status'];
  private readonly deadlineOptions: { readonly maxMs: number | undefined };
  private route: RouteHandle<M> | undefined = undefined;
  private server: Server | undefined = undefined;
  private accepting = false;
  private readonly readings = new Set<Reading>();
  /** The route clock's shared timer queue, looked up once per clock (not per request). */
  private timers: TimerQueue | undefined = undefined;
  private timersClock: RouteHandle<M>['clock'] | undefined = undefined;

  constructor(options: HttpEntrypointOptions = {}) {
    checkKeys(options, KEYS, 'httpEntrypoint');
    this.path = options.path ?? '/';
    if (typeof this.path !== 'string' || !this.path.startsWith('/'))
      throw new RouteConfigError(`path must start with '/', got ${String(options.path)}`);
    this.methods = checkMethods(options.method ?? 'POST');
    this.method = this.methods.join(', ');
    this.maxBodyBytes = checkInt(options.maxBodyBytes ?? 1_048_576, 0, 'maxBodyBytes');
    this.bodyTimeoutMs = checkMs(options.bodyTimeoutMs ?? 30_000, 1, 'bodyTimeoutMs');
    this.maxDeadlineMs = checkMs(options.maxDeadlineMs ?? 60_000, 0, 'maxDeadlineMs', true);
    this.deadlineOptions = {
      maxMs: this.maxDeadlineMs === Infinity ? undefined : this.maxDeadlineMs,
    };
    this.messageOption = options.message ?? 'body';
    if (
      !['body', 'query', 'params'].includes(this.messageOption as string) &&
      typeof this.messageOption !== 'function'
    )
      throw new RouteConfigError(
        `message: expected 'body', 'query', 'params' or a function, got ${String(this.messageOption)}`,
      );
    this.port = options.port === undefined ? undefined : checkInt(options.port, 0, 'port');
    this.host = options.host ?? '127.0.0.1';
    this.name = options.name ?? `http ${this.method} ${this.path}`;
    this.deadLetters = options.deadLetters;
    this.exposeErrors = options.exposeErrors ?? false;
    this.statusOverride = options.status;
    this.accepting = this.port === undefined; // mounted handlers take requests until stop()
    if (options.router !== undefined && !(options.router instanceof HttpRouter))
      throw new RouteConfigError(
        `router: expected an HttpRouter (httpRouter()), got ${String(options.router)}`,
      );
    this.router = options.router ?? new HttpRouter();
    this.router.mount(this);
  }

  bind(route: RouteHandle<M>): void {
    if (this.route !== undefined && this.route !== route)
      throw new RouteConfigError(`${this.name} already serves route ${this.route.name}`);
    this.route = route;
  }

  /** `http://host:port` once listening on its own. */
  get url(): string {
    const address = this.server?.address() as AddressInfo | null | undefined;
    if (!address) throw new RouteConfigError(`${this.name} is not listening`);
    return `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  }

  async start(): Promise<void> {
    if (this.route === undefined)
      throw new RouteConfigError(`${this.name} is not bound to a route`);
    this.accepting = true;
    if (this.port === undefined || this.server !== undefined) return;
    const server = createServer(this.handler);
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, this.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  }

  /**
   * A `node:http` request listener: its router's requests (this entrypoint's, and those of the
   * others mounted on the same router), 404 for any other path.
   */
  readonly handler = (req: IncomingMessage, res: ServerResponse): void =>
    this.router.handler(req, res);

  /**
   * Handles the request when its path matches one of its router's patterns (returns true; a
   * method not served there is answered 405 with `Allow`), else returns false and does nothing.
   */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    return this.router.handle(req, res);
  }

  /** @internal Serves a request its router matched to this entrypoint. */
  serve(req: IncomingMessage, res: ServerResponse, match: HttpMatch): void {
    const route = this.route;
    if (!this.accepting || route === undefined) {
      req.resume();
      this.reply(
        res,
        503,
        { error: { code: 'ROUTE_STOPPED', message: 'stopping' } },
        { connection: 'close' },
      );
      return;
    }
    const length = req.headers['content-length'];
    if (length !== undefined) {
      if (!/^\d{1,15}$/.test(length)) {
        this.fail(req, res, new HttpRequestError('BAD_REQUEST', 400, 'invalid content-length'));
        return;
      }
      if (Number(length) > this.maxBodyBytes) {
        this.fail(req, res, this.tooLarge());
        return;
      }
    }
    // the caller's budget counts from arrival: reading the body spends it too
    const budgetMs = readDeadlineHeader(req.headers, this.deadlineOptions);
    const clock = route.clock;
    const arrival = clock.now();
    const deadline = budgetMs === undefined ? undefined : arrival + budgetMs;
    const chunks: Buffer[] = [];
    let size = 0;
    if (this.timersClock !== clock) {
      this.timers = timerQueue(clock);
      this.timersClock = clock;
    }
    const timers = this.timers!;
    const reading: Reading = {
      at: arrival + this.bodyTimeoutMs,
      prev: undefined,
      next: undefined,
      queued: false,
      done: false,
      timers,
      fire: () => {
        reading.done = true;
        this.readings.delete(reading);
        this.fail(
          req,
          res,
          new HttpRequestError('BAD_REQUEST', 400, 'request body timed out'),
          {},
          408,
        );
      },
    };
    this.watch(reading);
    req.on('data', (chunk: Buffer) => {
      if (reading.done) return;
      size += chunk.length;
      if (size > this.maxBodyBytes) {
        this.unwatch(reading);
        this.fail(req, res, this.tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', () => this.unwatch(reading));
    req.on('end', () => {
      if (reading.done) return;
      this.unwatch(reading);
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
      this.dispatch(route, req, res, match, body, deadline);
    });
  }

  /**
   * Body deadlines are entries of the route clock's shared `TimerQueue` (one timer for every
   * deadline, no timer per request, and a `ManualClock` drives them in tests).
   */
  private watch(reading: Reading): void {
    this.readings.add(reading);
    reading.timers.insert(reading);
  }

  private unwatch(reading: Reading): void {
    reading.done = true;
    reading.timers.remove(reading);
    this.readings.delete(reading);
  }

  private dispatch(
    route: RouteHandle<M>,
    req: IncomingMessage,
    res: ServerResponse,
    match: HttpMatch,
    body: Buffer,
    deadline?: number,
  ): void {
    const { path, queryString, params } = match;
    const query = queryString === '' ? {} : Object.fromEntries(new URLSearchParams(queryString));
    let message: M;
    try {
      message = (
        this.messageOption === 'body'
          ? body
          : this.messageOption === 'query'
            ? query
            : this.messageOption === 'params'
              ? params
              : this.messageOption(req, body, params)
      ) as M;
    } catch (error) {
      this.fail(
        req,
        res,
        new HttpRequestError('BAD_REQUEST', 400, (error as Error)?.message ?? 'bad request', {
          cause: error,
        }),
      );
      return;
    }
    const http: HttpMeta = {
      method: req.method ?? 'GET',
      path,
      params,
      query,
      headers: req.headers,
      remoteAddress: req.socket.remoteAddress,
    };
    const meta: Meta = { http };
    const exchange: HttpExchange = { id: nextId(), req, res };
    let abort: ((reason: unknown) => void) | undefined;
    // 'close' is emitted once: `on` spares the wrapper `once` allocates
    res.on('close', () => {
      if (!res.writableFinished)
        abort?.(new CancelledError('the client closed the connection', true));
    });
    route
      .startRoute(exchange, message, meta, {
        entrypoint: this,
        onAbort: a => (abort = a),
        spanKind: 'server',
        traceContext: req.headers,
        deadline,
      })
      .then(
        outcome => this.settle(route, exchange, message, meta, outcome),
        () =>
          this.reply(
            res,
            503,
            { error: { code: 'ROUTE_STOPPED', message: 'stopping' } },
            { connection: 'close' },
          ),
      );
  }

  private settle(
    route: RouteHandle<M>,
    exchange: HttpExchange,
    message: unknown,
    meta: Meta,
    outcome: Outcome,
  ): void {
    const { res } = exchange;
    const status = this.statusOverride?.(outcome) ?? httpStatusFor(outcome);
    if (outcome.kind === 'failure' && outcome.terminal && this.deadLetters !== undefined) {
      route.metrics.increment('route.dead_letters', 1, route.metricTags);
      Promise.resolve(
        this.deadLetters.put(
          deadLetterRecord(
            {
              id: exchange.id,
              route: route.name,
              entrypoint: this.name,
              message,
              meta: strip(meta),
            },
            outcome,
            outcome.reason,
          ),
        ),
      ).catch(err => route.logger.error({ err, route: route.name }, 'dead letter sink failed'));
    }
    if (res.destroyed || res.writableEnded) return;
    switch (outcome.kind) {
      case 'success':
        return this.replyValue(res, status, outcome.value);
      case 'deferred':
        return this.reply(res, status, {
          deferred: { attempt: outcome.attempt, delayMs: outcome.delayMs, via: outcome.via },
        });
      case 'cancelled':
        return this.reply(
          res,
          status,
          { error: { code: 'CANCELLED', message: 'the server is stopping' } },
          { connection: 'close' },
        );
      case 'failure': {
        const code = errorCode(outcome.error) ?? 'INTERNAL';
        const text = outcome.error instanceof Error ? outcome.error.message : String(outcome.error);
        const show = status < 500 || this.exposeErrors;
        const headers: Record<string, string> = outcome.terminal ? {} : { 'retry-after': '1' };
        const retryAfterMs = (outcome.error as { retryAfterMs?: unknown } | null)?.retryAfterMs;
        if (status >= 500 && typeof retryAfterMs === 'number' && retryAfterMs >= 0)
          headers['retry-after'] = String(Math.max(1, Math.ceil(retryAfterMs / 1000)));
        const issues = isXError(outcome.error, 'TRANSLATION_FAILED')
          ? (outcome.error as TranslationError).issues
          : undefined;
        return this.reply(
          res,
          status,
          {
            error: {
              code,
              message: show ? text : 'internal error',
              ...(issues && status < 500 ? { issues } : {}),
            },
          },
          headers,
        );
      }
    }
  }

  private tooLarge(): HttpRequestError {
    return new HttpRequestError(
      'PAYLOAD_TOO_LARGE',
      413,
      `body larger than ${this.maxBodyBytes} bytes`,
    );
  }

  private fail(
    req: IncomingMessage,
    res: ServerResponse,
    error: HttpRequestError,
    headers: Record<string, string> = {},
    status: number = error.status,
  ): void {
    // Stop reading and close the connection after the answer: the rest of the body is garbage.
    req.removeAllListeners('data');
    req.resume();
    this.reply(
      res,
      status,
      { error: { code: error.code, message: error.message } },
      { ...headers, connection: 'close' },
    );
  }

  private replyValue(res: ServerResponse, status: number, value: unknown): void {
    if (value === undefined) return this.reply(res, status, undefined);
    if (typeof value === 'string')
      return this.send(res, status, 'text/plain; charset=utf-8', value);
    if (value instanceof Uint8Array)
      return this.send(res, status, 'application/octet-stream', value);
    this.reply(res, status, value);
  }

  private reply(
    res: ServerResponse,
    status: number,
    body: unknown,
    headers?: Record<string, string>,
  ): void {
    if (res.headersSent || res.destroyed) return;
    let text: string | undefined;
    try {
      text = body === undefined ? undefined : JSON.stringify(body);
    } catch {
      status = 500;
      text = JSON.stringify({
        error: { code: 'INTERNAL', message: 'the result is not serialisable' },
      });
    }
    if (headers !== undefined) for (const k in headers) res.setHeader(k, headers[k]!);
    this.send(res, status, 'application/json', text);
  }

  private send(
    res: ServerResponse,
    status: number,
    type: string,
    body: string | Uint8Array | undefined,
  ): void {
    if (res.headersSent || res.destroyed) return;
    if (body === undefined || status === 204) {
      res.writeHead(status);
      res.end();
      return;
    }
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  /** Stops taking requests (new ones get 503); stops listening when it listens on its own. */
  async stop(): Promise<{ returned: EntryRef[] }> {
    this.accepting = false;
    if (this.server !== undefined) {
      this.server.close();
      this.server.closeIdleConnections();
    }
    return { returned: [] };
  }

  /** Closes every connection of its own server. */
  async close(): Promise<void> {
    this.accepting = false;
    for (const reading of this.readings) reading.timers.remove(reading);
    this.readings.clear();
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    await new Promise<void>(resolve => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** A request body being read: its deadline is an entry of the route clock's timer queue. */
interface Reading extends TimerEntry {
  done: boolean;
  readonly timers: TimerQueue;
}

const METHOD = /^[A-Z][A-Z-]*$/;

function checkMethods(method: string | readonly string[]): readonly string[] {
  const list = typeof method === 'string' ? [method] : method;
  if (!Array.isArray(list) || list.length === 0)
    throw new RouteConfigError(
      `method: expected a method or a non-empty array of methods, got ${String(method)}`,
    );
  const methods = list.map(m => (typeof m === 'string' ? m.toUpperCase() : m));
  for (const m of methods)
    if (typeof m !== 'string' || (m !== '*' && !METHOD.test(m)))
      throw new RouteConfigError(`method: expected an HTTP method or '*', got ${String(m)}`);
  return [...new Set(methods)];
}

function strip(meta: Meta): Meta {
  const http = meta.http as HttpMeta;
  return { http: { method: http.method, path: http.path, params: http.params, query: http.query } };
}

/** An {@link HttpEntrypoint}: the message is the body `Buffer`, the query object, or what `message()` returns. */
export function httpEntrypoint(
  options?: HttpEntrypointOptions & { readonly message?: 'body' },
): HttpEntrypoint<Buffer>;
export function httpEntrypoint(
  options: HttpEntrypointOptions & { readonly message: 'query' | 'params' },
): HttpEntrypoint<Readonly<Record<string, string>>>;
export function httpEntrypoint<M>(
  options: HttpEntrypointOptions & {
    readonly message: (req: IncomingMessage, body: Buffer, params: PathParams) => M;
  },
): HttpEntrypoint<M>;
export function httpEntrypoint(options: HttpEntrypointOptions = {}): HttpEntrypoint<unknown> {
  return new HttpEntrypoint<unknown>(options);
}
