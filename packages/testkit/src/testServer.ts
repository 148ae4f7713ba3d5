import { createServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';

/** One scripted answer of a {@link TestServer}. Fields combine: `delayMs` first, then the fault or the response. */
export interface ScriptedResponse {
  /** Status code. Default 200. */
  status?: number;
  /** Extra response headers. */
  headers?: Record<string, string>;
  /** A string or Buffer is sent as-is; anything else is JSON.stringify'd with content-type application/json. */
  body?: unknown;
  /** Wait this many milliseconds before sending headers (or before the fault). */
  delayMs?: number;
  /** Never answer: the socket stays open until the client gives up or the server closes. */
  hang?: boolean;
  /** Destroy the socket (TCP RST) without writing any response byte. */
  reset?: boolean;
  /** Write raw non-HTTP bytes on the socket, then destroy it. */
  garbage?: boolean;
  /** Send headers with a content-length larger than the body, send the body, then destroy the socket. */
  truncate?: boolean;
  /** Send the headers at once, then the body after this many milliseconds. */
  slowBodyMs?: number;
}

/** A fixed response, or a function computing one from the recorded request. */
export type ScriptStep =
  ScriptedResponse | ((req: RecordedRequest) => ScriptedResponse | Promise<ScriptedResponse>);

/** A request as seen by a {@link TestServer}, recorded once its body has been read. */
export interface RecordedRequest {
  /** HTTP method, e.g. `GET`. */
  method: string;
  /** Raw request target, e.g. `/items?id=1`. */
  url: string;
  /** Path part of the URL, without the query. */
  path: string;
  /** Parsed query string. */
  query: URLSearchParams;
  /** Request headers (lower-cased names). */
  headers: IncomingHttpHeaders;
  /** Raw request body (empty when there was none). */
  body: Buffer;
  /** The parsed body, present only when the body is valid JSON. */
  json?: unknown;
  /** `Date.now()` when the request body had been fully received. */
  receivedAt: number;
}

/** Options of {@link startTestServer}. */
export interface TestServerOptions {
  /** Responses in order; the last one repeats. Default: 200 `{"ok":true,"path":...}`. */
  script?: ScriptStep[] | ScriptStep;
  /**
   * Scripts per `"METHOD /path"` or `"/path"` (exact path match, query ignored), taking precedence over
   * `script`; `"METHOD /path"` wins over `"/path"`. Each route has its own sequence whose last step repeats.
   */
  routes?: Record<string, ScriptStep | ScriptStep[]>;
  /** `server.keepAliveTimeout` in milliseconds. Default 5000. */
  keepAliveTimeoutMs?: number;
  /** Interface to bind. Default `127.0.0.1`. */
  host?: string;
}

/** A scripted HTTP/1.1 server on loopback that records every request. */
export interface TestServer {
  /** Base URL, e.g. `http://127.0.0.1:43210`. */
  readonly url: string;
  /** Same as {@link TestServer.url}. */
  readonly origin: string;
  /** Bound host. */
  readonly host: string;
  /** Bound port. */
  readonly port: number;
  /** Every request received, in order (the last 10 000). */
  readonly requests: RecordedRequest[];
  /** Number of requests received since start or the last {@link TestServer.resetStats}. */
  readonly requestCount: number;
  /** Requests received and not yet answered or ended (their socket closed). */
  readonly inFlight: number;
  /** High-water mark of {@link TestServer.inFlight}. */
  readonly maxInFlight: number;
  /** Currently open TCP connections. */
  readonly connections: number;
  /** Connections accepted since start or the last {@link TestServer.resetStats}. */
  readonly totalConnections: number;
  /** Replaces the default script and restarts its sequence (routes keep theirs). */
  setScript(script: ScriptStep[] | ScriptStep): void;
  /** Clears requests and counters; maxInFlight restarts from the current inFlight. */
  resetStats(): void;
  /** Resolves when requestCount >= n; rejects after `timeoutMs` (default 5000) or when the server closes. */
  waitForRequests(n: number, timeoutMs?: number): Promise<void>;
  /** Closes idle keep-alive sockets (to provoke "server closed idle connection" on clients). */
  closeIdleConnections(): void;
  /** Stops listening and destroys every socket; resolves when fully closed. Idempotent. */
  close(): Promise<void>;
  /** Same as {@link TestServer.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

const MAX_RECORDED = 10_000;
const GARBAGE = Buffer.from('\x00\xffTHIS IS NOT HTTP\r\n\x01\x02garbage\r\n\r\n', 'latin1');
const OPTION_KEYS = ['script', 'routes', 'keepAliveTimeoutMs', 'host'] as const;

const defaultStep: ScriptStep = req => ({ body: { ok: true, path: req.path } });

/** Steps of a script; the last one repeats forever. */
class Sequence {
  private readonly steps: ScriptStep[];
  private index = 0;

  constructor(script: ScriptStep[] | ScriptStep) {
    this.steps = Array.isArray(script) ? [...script] : [script];
    if (this.steps.length === 0) this.steps.push(defaultStep);
  }

  next(): ScriptStep {
    const step = this.steps[Math.min(this.index, this.steps.length - 1)] ?? defaultStep;
    this.index++;
    return step;
  }
}

interface Waiter {
  n: number;
  resolve: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

function isOptions(value: unknown): value is TestServerOptions {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  return keys.length === 0 || OPTION_KEYS.some(k => keys.includes(k));
}

function normalizeOptions(
  options: TestServerOptions | ScriptStep[] | ScriptStep | undefined,
): TestServerOptions {
  if (options === undefined) return {};
  if (Array.isArray(options) || typeof options === 'function' || !isOptions(options))
    return { script: options };
  return options;
}

function normalizeRouteKey(key: string): string {
  const match = /^\s*([A-Za-z]+)\s+(\S+)\s*$/.exec(key);
  return match ? `${(match[1] ?? '').toUpperCase()} ${match[2] ?? ''}` : key.trim();
}

function encodeBody(body: unknown): { data: Buffer; json: boolean } {
  if (body === undefined) return { data: Buffer.alloc(0), json: false };
  if (typeof body === 'string') return { data: Buffer.from(body), json: false };
  if (Buffer.isBuffer(body)) return { data: body, json: false };
  if (body instanceof Uint8Array) return { data: Buffer.from(body), json: false };
  return { data: Buffer.from(JSON.stringify(body) ?? 'null'), json: true };
}

function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

function destroyWithReset(socket: Socket): void {
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}

class TestServerImpl implements TestServer {
  readonly host: string;
  readonly requests: RecordedRequest[] = [];
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly routes = new Map<string, Sequence>();
  private readonly waiters = new Set<Waiter>();
  private script: Sequence;
  private boundPort = 0;
  private requestCounter = 0;
  private inFlightCount = 0;
  private inFlightMax = 0;
  private connectionCounter = 0;
  private closing: Promise<void> | undefined;

  constructor(options: TestServerOptions) {
    this.host = options.host ?? '127.0.0.1';
    this.script = new Sequence(options.script ?? defaultStep);
    for (const [key, steps] of Object.entries(options.routes ?? {})) {
      this.routes.set(normalizeRouteKey(key), new Sequence(steps));
    }
    this.server = createServer((req, res) => this.handle(req, res));
    this.server.keepAliveTimeout = options.keepAliveTimeoutMs ?? 5000;
    this.server.on('connection', (socket: Socket) => {
      this.connectionCounter++;
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      if (this.closing) socket.destroy();
    });
  }

  get url(): string {
    return `http://${hostForUrl(this.host)}:${this.boundPort}`;
  }

  get origin(): string {
    return this.url;
  }

  get port(): number {
    return this.boundPort;
  }

  get requestCount(): number {
    return this.requestCounter;
  }

  get inFlight(): number {
    return this.inFlightCount;
  }

  get maxInFlight(): number {
    return this.inFlightMax;
  }

  get connections(): number {
    return this.sockets.size;
  }

  get totalConnections(): number {
    return this.connectionCounter;
  }

  listen(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.server.once('error', onError);
      this.server.listen(0, this.host, () => {
        this.server.off('error', onError);
        const address = this.server.address();
        if (typeof address === 'object' && address !== null) this.boundPort = address.port;
        resolve();
      });
    });
  }

  setScript(script: ScriptStep[] | ScriptStep): void {
    this.script = new Sequence(script);
  }

  resetStats(): void {
    this.requests.length = 0;
    this.requestCounter = 0;
    this.connectionCounter = 0;
    this.inFlightMax = this.inFlightCount;
  }

  waitForRequests(n: number, timeoutMs = 5000): Promise<void> {
    if (this.requestCounter >= n) return Promise.resolve();
    if (this.closing)
      return Promise.reject(new Error('waitForRequests: the test server is closed'));
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        n,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          reject(
            new Error(
              `waitForRequests: expected ${n} requests within ${timeoutMs}ms, got ${this.requestCounter}`,
            ),
          );
        }, timeoutMs),
      };
      this.waiters.add(waiter);
    });
  }

  closeIdleConnections(): void {
    this.server.closeIdleConnections();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      // The callback gets ERR_SERVER_NOT_RUNNING if listen never succeeded: closed either way.
      const serverClosed = new Promise<void>(resolve => this.server.close(() => resolve()));
      this.server.closeAllConnections();
      // A socket still in the set has not emitted 'close' yet (its listener removes it).
      const socketsClosed = [...this.sockets].map(socket => once(socket, 'close'));
      for (const socket of this.sockets) socket.destroy();
      for (const waiter of this.waiters) {
        clearTimeout(waiter.timer);
        waiter.reject(new Error('waitForRequests: the test server closed'));
      }
      this.waiters.clear();
      await Promise.all([serverClosed, ...socketsClosed]);
    })();
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    this.inFlightCount++;
    if (this.inFlightCount > this.inFlightMax) this.inFlightMax = this.inFlightCount;
    const gone = new AbortController();
    res.once('close', () => {
      this.inFlightCount--;
      gone.abort();
    });
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('error', () => {});
    req.once('end', () => {
      const record = this.record(req, Buffer.concat(chunks));
      this.respond(req, res, record, gone.signal).catch((err: unknown) => {
        if (gone.signal.aborted) return;
        if (res.headersSent) {
          req.socket.destroy();
          return;
        }
        const message = err instanceof Error ? err.message : String(err);
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: message }));
      });
    });
  }

  private record(req: IncomingMessage, body: Buffer): RecordedRequest {
    const rawUrl = req.url ?? '/';
    const parsed = rawUrl.startsWith('/')
      ? new URL(`http://test.invalid${rawUrl}`)
      : new URL(rawUrl, 'http://test.invalid');
    const record: RecordedRequest = {
      method: req.method ?? 'GET',
      url: rawUrl,
      path: parsed.pathname,
      query: parsed.searchParams,
      headers: req.headers,
      body,
      receivedAt: Date.now(),
    };
    if (body.length > 0) {
      try {
        record.json = JSON.parse(body.toString('utf8')) as unknown;
      } catch {
        // not JSON: leave `json` absent
      }
    }
    this.requests.push(record);
    if (this.requests.length > MAX_RECORDED) this.requests.shift();
    this.requestCounter++;
    for (const waiter of this.waiters) {
      if (this.requestCounter >= waiter.n) {
        clearTimeout(waiter.timer);
        this.waiters.delete(waiter);
        waiter.resolve();
      }
    }
    return record;
  }

  private pickStep(req: RecordedRequest): ScriptStep {
    const route =
      this.routes.get(`${req.method.toUpperCase()} ${req.path}`) ?? this.routes.get(req.path);
    return (route ?? this.script).next();
  }

  private async respond(
    req: IncomingMessage,
    res: ServerResponse,
    record: RecordedRequest,
    gone: AbortSignal,
  ): Promise<void> {
    const step = this.pickStep(record);
    const scripted = typeof step === 'function' ? await step(record) : step;
    const socket = req.socket;
    if (gone.aborted) return;
    if (scripted.delayMs !== undefined && scripted.delayMs > 0) {
      if (!(await pause(scripted.delayMs, gone))) return;
    }
    if (scripted.hang) return;
    if (scripted.reset) {
      destroyWithReset(socket);
      return;
    }
    if (scripted.garbage) {
      socket.end(GARBAGE, () => socket.destroy());
      return;
    }

    const { data, json } = encodeBody(scripted.body);
    const headers = scripted.headers ?? {};
    for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
    if (json && !res.hasHeader('content-type')) res.setHeader('content-type', 'application/json');
    const status = scripted.status ?? 200;

    if (scripted.truncate) {
      const partial = data.length > 0 ? data : Buffer.from('{"truncated":');
      res.setHeader('content-length', String(partial.length + 64));
      res.writeHead(status);
      res.write(partial, () => socket.destroy());
      return;
    }
    if (!res.hasHeader('content-length') && !res.hasHeader('transfer-encoding')) {
      res.setHeader('content-length', String(data.length));
    }
    res.writeHead(status);
    if (scripted.slowBodyMs !== undefined && scripted.slowBodyMs > 0) {
      res.flushHeaders();
      if (!(await pause(scripted.slowBodyMs, gone))) return;
    }
    res.end(data);
  }
}

/** Sleeps `ms` unless `signal` aborts first; returns false when aborted. */
async function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  try {
    await sleep(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts a scripted HTTP server on 127.0.0.1, port 0. Accepts full options, or just a script (one step
 * or an array of steps). An object with none of the option keys is taken as a single scripted response.
 */
export async function startTestServer(
  options?: TestServerOptions | ScriptStep[] | ScriptStep,
): Promise<TestServer> {
  const server = new TestServerImpl(normalizeOptions(options));
  await server.listen();
  return server;
}

/** Starts `n` test servers with the same options (their scripts advance independently). */
export async function startTestServers(
  n: number,
  options?: TestServerOptions | ScriptStep[] | ScriptStep,
): Promise<TestServer[]> {
  const results = await Promise.allSettled(
    Array.from({ length: n }, () => startTestServer(options)),
  );
  const servers = results.flatMap(r => (r.status === 'fulfilled' ? [r.value] : []));
  const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure) {
    await Promise.all(servers.map(s => s.close()));
    throw failure.reason;
  }
  return servers;
}
