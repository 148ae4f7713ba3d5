import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { InvalidConfigError } from './errors.js';
import { durationOption } from './internal/durationOption.js';
import type { FrontDoorHandlerSettings } from './internal/frontDoorHandler.js';
import type { FrontDoorServerSettings } from './internal/frontDoorServer.js';
import { positiveOption, timerOption } from './internal/positiveOption.js';
import { TrustedProxies } from './internal/trustedProxies.js';

/** Options of a front door, mounted (`dispatcher.mount()`) or listening (`dispatcher.listen()`). */
export interface FrontDoorOptions {
  /** Peers whose `X-Forwarded-For` / `-Proto` / request id are believed (addresses, CIDRs, `'loopback'`). Default none. */
  readonly trustedProxies?: readonly string[];
  /** Largest request body. Default: the dispatcher's `maxBodyBytes`. */
  readonly maxBodyBytes?: number;
  /** Header carrying the request id. Default `'x-request-id'`. */
  readonly requestIdHeader?: string;
  /**
   * The request id the mounting server already gave a request (e.g. `req => req.headers['x-request-id']`
   * after it checked it): used as is. Without it (or when it returns undefined) the id comes from a
   * trusted proxy or is new.
   */
  readonly requestId?: (req: IncomingMessage) => string | undefined;
  /**
   * The admin API, served under `path` (default `'/_x/admin'`) to holders of `token`. Off without a
   * token. A client address that sends `maxFailures` wrong tokens (default 10) is answered 429
   * `TOO_MANY_ATTEMPTS` with `Retry-After` until its budget refills (one failure per
   * `failureWindowMs / maxFailures`; window default 60 000 ms). Right tokens cost nothing.
   */
  readonly admin?: {
    readonly token: string;
    readonly path?: string;
    readonly maxFailures?: number;
    readonly failureWindowMs?: number;
  };
  /** On close, wait this long for in-flight requests. Default 10 000 ms. */
  readonly drainTimeoutMs?: number;
}

/** Options of `dispatcher.listen()`: the front door's and its own server's. */
export interface ListenOptions extends FrontDoorOptions {
  /** Default 0 (any free port). */
  readonly port?: number;
  /** Default `'127.0.0.1'`. */
  readonly host?: string;
  /** Largest request head. Default 16 384 bytes (431 beyond). */
  readonly maxHeaderBytes?: number;
  /** Time to receive the request head. Default 10 000 ms (408). */
  readonly headersTimeoutMs?: number;
  /** Time to receive the whole request. Default 30 000 ms (408). */
  readonly requestTimeoutMs?: number;
  /** Idle keep-alive connections close after this. Default 5 000 ms. */
  readonly keepAliveTimeoutMs?: number;
  /** Default 10 000. */
  readonly maxConnections?: number;
  /**
   * Requests of one connection served at a time (HTTP/1.1 pipelining; `PipelineGate` of
   * `@x/resilience`). Later ones wait for an earlier answer to be written; a connection with more
   * than 16 × as many waiting, or full and making no progress for `requestTimeoutMs`, is closed.
   * Default 8.
   */
  readonly maxPipelinedRequests?: number;
  /**
   * Tunnel upgrade requests (WebSocket) to HTTP instances (the mounted door's `upgrade`). Default
   * false: an `Upgrade` header is dropped and the request served as a plain one, as clients that
   * offer `h2c` expect.
   */
  readonly upgrades?: boolean;
}

/** A listening front door. */
export interface HttpFrontDoor extends AsyncDisposable {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * The front door as listeners for any `node:http` server (or a framework that hands out Node's
 * `req`/`res`): same routing, deadlines, `X-Served-By`, health and ejection as `listen()`.
 *
 * ```ts
 * const door = dispatcher.mount({ requestId: req => req.headers['x-request-id'] as string });
 * const server = createServer((req, res) => door.handler(req, res, () => myRoutes(req, res)));
 * server.on('upgrade', door.upgrade);
 * ```
 */
export interface MountedFrontDoor extends AsyncDisposable {
  /**
   * A request listener. With `next`, requests the dispatcher does not own (see `matches`) go to
   * `next` untouched; without it every request is served (the default module takes the rest).
   */
  readonly handler: (req: IncomingMessage, res: ServerResponse, next?: () => void) => void;
  /** An `upgrade` listener: tunnels WebSocket (any upgrade) requests to HTTP instances. */
  readonly upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  /** True for requests the dispatcher owns: the admin path, a module host name, a matching dispatch rule. */
  matches(req: IncomingMessage): boolean;
  /** Stops taking requests (503 `DISPATCHER_CLOSED`) and waits up to `drainTimeoutMs` for those in flight. */
  close(): Promise<void>;
}

/** Normalizes {@link FrontDoorOptions} (typed `INVALID_CONFIG` naming the option). */
export function frontDoorHandlerSettings(
  options: FrontDoorOptions,
  defaults: { readonly maxBodyBytes: number },
): FrontDoorHandlerSettings {
  if (typeof options !== 'object' || options === null)
    throw new InvalidConfigError(`front door options must be an object, got ${String(options)}`);
  const admin = options.admin;
  if (admin !== undefined && (typeof admin.token !== 'string' || admin.token.length < 16))
    throw new InvalidConfigError('admin.token must be a string of at least 16 characters');
  const adminPath = admin ? (admin.path ?? '/_x/admin').replace(/\/+$/, '') : undefined;
  if (adminPath !== undefined && !adminPath.startsWith('/'))
    throw new InvalidConfigError('admin.path must start with /');
  const requestIdHeader = (options.requestIdHeader ?? 'x-request-id').toLowerCase();
  if (!/^[a-z0-9-]+$/.test(requestIdHeader))
    throw new InvalidConfigError('requestIdHeader must be a header name');
  if (options.requestId !== undefined && typeof options.requestId !== 'function')
    throw new InvalidConfigError(
      `requestId must be a function (req) => string | undefined, got ${typeof options.requestId}`,
    );
  return {
    trustedProxies: new TrustedProxies(options.trustedProxies ?? []),
    maxBodyBytes: positiveOption('maxBodyBytes', options.maxBodyBytes, defaults.maxBodyBytes, true),
    requestIdHeader,
    requestId: options.requestId,
    adminPath,
    adminToken: admin ? Buffer.from(admin.token) : undefined,
    adminMaxFailures: positiveOption('admin.maxFailures', admin?.maxFailures, 10, true),
    adminFailureWindowMs: positiveOption('admin.failureWindowMs', admin?.failureWindowMs, 60_000),
    drainTimeoutMs: durationOption(options.drainTimeoutMs ?? 10_000, 'drainTimeoutMs', {
      allowInfinity: false,
    }),
  };
}

/** Normalizes the server half of {@link ListenOptions}. */
export function frontDoorServerSettings(options: ListenOptions): FrontDoorServerSettings {
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new InvalidConfigError(`port must be an integer 0 to 65535, got ${String(port)}`);
  return {
    port,
    host: options.host ?? '127.0.0.1',
    maxHeaderBytes: positiveOption('maxHeaderBytes', options.maxHeaderBytes, 16_384, true),
    headersTimeoutMs: timerOption(options.headersTimeoutMs ?? 10_000, 'headersTimeoutMs'),
    requestTimeoutMs: timerOption(options.requestTimeoutMs ?? 30_000, 'requestTimeoutMs'),
    keepAliveTimeoutMs: timerOption(options.keepAliveTimeoutMs ?? 5_000, 'keepAliveTimeoutMs'),
    maxConnections: positiveOption('maxConnections', options.maxConnections, 10_000, true),
    maxPipelinedRequests: positiveOption(
      'maxPipelinedRequests',
      options.maxPipelinedRequests,
      8,
      true,
    ),
    upgrades: booleanOption('upgrades', options.upgrades, false),
  };
}

function booleanOption(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean')
    throw new InvalidConfigError(`${name} must be true or false, got ${String(value)}`);
  return value;
}
