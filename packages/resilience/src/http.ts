import { duration } from './duration.js';
import { clearTimer, setTimer } from './setTimer.js';
import type { Readable } from 'node:stream';
import { interceptors, type Dispatcher } from 'undici';
import { AbortedError, ConnectionError, DecodeError, HttpError, TimeoutError } from './errors.js';
import { parseRetryAfter } from './retryAfter.js';
import { isXError } from './xError.js';
import { redactUrl } from './redactUrl.js';
import { Tracer } from './tracing.js';

/** Client spans of `Call.http` requests (channel `x:resilience:http`). */
export const httpClientTracer = new Tracer('@x/resilience', 'x:resilience:http');
import { DEADLINE_HEADER, deadlineHeaderValue, readDeadlineHeader } from './deadlineHeader.js';

/** Query parameters: values are repeated for arrays; `undefined` values are skipped. */
export type QueryParams =
  | URLSearchParams
  | ReadonlyArray<readonly [string, string]>
  | Readonly<
      Record<
        string,
        string | number | boolean | undefined | ReadonlyArray<string | number | boolean>
      >
    >;

/** Options of {@link Http.request} (dace's `Http.request` keyword arguments). */
export interface HttpRequestOptions {
  readonly headers?: Readonly<Record<string, string | readonly string[]>>;
  /** Added to the URL's own query string (dace's `params`). */
  readonly query?: QueryParams;
  /** Raw body (dace's `data`). */
  readonly body?: string | Uint8Array | Readable | null;
  /** A JSON body; sets `content-type: application/json`. */
  readonly json?: unknown;
  /** Keep the connection for reuse. Default true. */
  readonly persistent?: boolean;
  /** Follow redirects (up to 10). Default true. */
  readonly allowRedirects?: boolean;
  /** HTTP basic authentication. */
  readonly auth?:
    readonly [string, string] | { readonly username: string; readonly password: string };
  /** Timeout of this request in ms (an attempt timeout: retried only with `retryOnTimeout`). */
  readonly timeout?: number;
  readonly signal?: AbortSignal;
  /**
   * Which statuses reject with `HTTP_ERROR` (so retries, breakers and fallbacks see them).
   * Default: 5xx, 408 and 429. `false` never rejects on status.
   */
  readonly throwOnStatus?: boolean | ((status: number) => boolean);
  /** Sent as `Idempotency-Key`; makes a POST or PATCH safe to retry. */
  readonly idempotencyKey?: string;
  /**
   * Send the request's remaining budget (the call's deadline or `timeout`, the smaller) in
   * `DEADLINE_HEADER` (`x-request-timeout-ms`), so the server stops when nobody waits any more.
   * Default true; nothing is sent when the request has no limit.
   */
  readonly sendDeadline?: boolean;
}

/** A response; read the body once with `text()`, `json()` or `body`. */
export interface HttpResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly url: string;
  readonly body: Dispatcher.ResponseData['body'];
  text(): Promise<string>;
  json<T = unknown>(): Promise<T>;
}

/** Where an {@link Http} client takes its defaults from (a `Call` supplies them per attempt). */
export interface HttpContext {
  /** Base for relative URLs (the load-balanced endpoint). */
  readonly baseUrl?: string | undefined;
  /** Aborts every request (the call's deadline or cancellation). */
  readonly signal?: AbortSignal | undefined;
  /** Ms left in the call; requests never outlive it. */
  remaining?(): number;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);
const defaultThrowOn = (status: number) => status >= 500 || status === 408 || status === 429;
const redirecting = new WeakMap<Dispatcher, Dispatcher>();

/**
 * dace's HTTP service on undici: `request(method, url, options)`. Relative URLs resolve against
 * the call's endpoint; every request is bounded by the call's deadline and signal.
 */
export class Http {
  constructor(
    /** The undici dispatcher (dace's `agent`). */
    readonly agent: Dispatcher,
    private readonly context: HttpContext = {},
  ) {}

  async request(
    method: string,
    url: string | URL,
    options: HttpRequestOptions = {},
  ): Promise<HttpResponse> {
    const verb = method.toUpperCase();
    if (!/^[A-Z]+$/.test(verb))
      throw new TypeError(`invalid HTTP method: ${JSON.stringify(method)}`);
    const target = resolveUrl(url, this.context.baseUrl, options.query);
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(options.headers ?? {}))
      headers[k.toLowerCase()] = typeof v === 'string' ? v : [...v];
    let body = options.body ?? undefined;
    if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      headers['content-type'] ??= 'application/json';
    }
    if (options.auth) {
      const [user, pass] = Array.isArray(options.auth)
        ? options.auth
        : [
            (options.auth as { username: string }).username,
            (options.auth as { password: string }).password,
          ];
      headers.authorization = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
    }
    if (options.idempotencyKey) headers['idempotency-key'] = options.idempotencyKey;
    const idempotent = IDEMPOTENT.has(verb) || headers['idempotency-key'] !== undefined;

    const remaining = this.context.remaining?.() ?? Infinity;
    const attemptMs =
      options.timeout === undefined
        ? undefined
        : duration(options.timeout, 'timeout', { exclusiveMin: true });
    const limitMs = Math.min(remaining, attemptMs ?? Infinity);
    if (limitMs !== Infinity && options.sendDeadline !== false) {
      // a smaller budget set by the caller wins
      const own = readDeadlineHeader(headers);
      headers[DEADLINE_HEADER] = deadlineHeaderValue(
        own === undefined ? limitMs : Math.min(own, limitMs),
      );
    }
    const parents = [this.context.signal, options.signal].filter(
      (s): s is AbortSignal => s !== undefined,
    );
    const controller = new AbortController();
    const onAbort = (event: Event) => controller.abort((event.target as AbortSignal).reason);
    for (const s of parents) if (s.aborted) throw abortError(s.reason);
    for (const s of parents) s.addEventListener('abort', onAbort, { once: true });
    // A limit that comes from the context (the call's deadline) is enforced by the owner of the
    // context's signal, which aborts it with its own TimeoutError; a second timer here would race
    // that one (reporting a rounded-down timeoutMs and hiding the timeout from the policy's events).
    const contextEnforces = this.context.signal !== undefined && limitMs !== attemptMs;
    const timer =
      limitMs === Infinity || contextEnforces
        ? undefined
        : setTimer(
            () =>
              controller.abort(
                new TimeoutError(
                  Math.round(limitMs),
                  limitMs === attemptMs ? 'attempt' : 'operation',
                ),
              ),
            Math.max(0, limitMs),
          );
    // An OpenTelemetry client span (semantic conventions for HTTP) when somebody traces; its
    // W3C trace context goes out with the request so the server continues the trace.
    const span = httpClientTracer.start(verb, {
      kind: 'client',
      attributes: {
        'http.request.method': verb,
        'server.address': target.hostname,
        'server.port': Number(target.port) || (target.protocol === 'https:' ? 443 : 80),
        'url.full': redactUrl(target.href),
      },
    });
    if (span !== undefined) span.inject(headers as Record<string, string>);
    let spanError: unknown;
    const dispatcher = options.allowRedirects === false ? this.agent : withRedirects(this.agent);
    // The deadline and signals bound the whole request, body included: they stay linked until the
    // body has been read or destroyed, so a body that stalls after the headers is aborted too.
    let linked = true;
    const unlink = () => {
      if (!linked) return;
      linked = false;
      clearTimer(timer);
      for (const s of parents) s.removeEventListener('abort', onAbort);
      span?.end(spanError);
    };
    const failure = (error: unknown): unknown =>
      (spanError = controller.signal.aborted
        ? abortError(controller.signal.reason, error)
        : connectionError(error, verb, target.href, idempotent));
    const bodyError = (error: unknown): never => {
      throw failure(error);
    };
    let bodyOwnsLink = false;
    try {
      const response = await dispatcher.request({
        method: verb as Dispatcher.HttpMethod,
        origin: target.origin,
        path: `${target.pathname}${target.search}`,
        headers,
        body: body as Dispatcher.DispatchOptions['body'],
        signal: controller.signal,
        reset: options.persistent === false,
      });
      span?.setAttributes({ 'http.response.status_code': response.statusCode });
      const throwOn = options.throwOnStatus === undefined ? defaultThrowOn : options.throwOnStatus;
      if (
        throwOn === true
          ? response.statusCode >= 400
          : throwOn !== false && throwOn(response.statusCode)
      ) {
        const text = await readSnippet(response.body);
        throw new HttpError(
          response.statusCode,
          verb,
          target.href,
          response.headers,
          text,
          parseRetryAfter(response.headers['retry-after']),
          idempotent,
        );
      }
      const res: HttpResponse = {
        status: response.statusCode,
        headers: response.headers,
        url: target.href,
        body: response.body,
        text: () => response.body.text().catch(bodyError),
        json: <T>() => (response.body.json() as Promise<T>).catch(bodyError),
      };
      if (!response.body.destroyed) {
        bodyOwnsLink = true;
        response.body.once('end', unlink).once('close', unlink);
      }
      return res;
    } catch (error) {
      throw failure(error);
    } finally {
      if (!bodyOwnsLink) unlink();
    }
  }

  get(url: string | URL, options?: HttpRequestOptions): Promise<HttpResponse> {
    return this.request('GET', url, options);
  }

  post(url: string | URL, options?: HttpRequestOptions): Promise<HttpResponse> {
    return this.request('POST', url, options);
  }
}

function withRedirects(agent: Dispatcher): Dispatcher {
  let composed = redirecting.get(agent);
  if (!composed)
    redirecting.set(
      agent,
      (composed = agent.compose(interceptors.redirect({ maxRedirections: 10 }))),
    );
  return composed;
}

/** undici's codes for a request built wrongly by the caller: not a connection failure. */
const CALLER_ERRORS = new Set(['UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED']);

/**
 * A failure below HTTP (refused, reset, closed, not HTTP, a cut body) as a typed
 * {@link ConnectionError}, a body that is not JSON as a {@link DecodeError}; typed errors and caller
 * mistakes pass through.
 */
function connectionError(
  error: unknown,
  method: string,
  url: string,
  idempotent: boolean,
): unknown {
  if (isXError(error)) return error;
  if (error instanceof SyntaxError) return new DecodeError(method, url, { cause: error });
  if (CALLER_ERRORS.has((error as { code?: string } | null)?.code ?? '')) return error;
  return new ConnectionError(method, url, idempotent, { cause: error });
}

function abortError(reason: unknown, cause?: unknown): unknown {
  if (
    reason instanceof TimeoutError ||
    reason instanceof AbortedError ||
    (reason as { code?: string } | null)?.code === 'TIMEOUT'
  )
    return reason;
  return new AbortedError({ cause: reason ?? cause });
}

async function readSnippet(body: Dispatcher.ResponseData['body']): Promise<string> {
  let text = '';
  try {
    for await (const chunk of body) {
      text += (chunk as Buffer).toString('utf8');
      if (text.length >= 4096) break;
    }
  } catch {
    // a broken error body still gives an HttpError with what arrived
  } finally {
    body.destroy();
  }
  return text.slice(0, 4096);
}

function resolveUrl(
  url: string | URL,
  base: string | undefined,
  query: QueryParams | undefined,
): URL {
  let target: URL;
  try {
    target = typeof url === 'string' ? new URL(url, base) : new URL(url.href);
  } catch {
    throw new TypeError(
      `invalid URL ${JSON.stringify(String(url))}${base ? '' : ' (relative URLs need a load-balanced endpoint)'}`,
    );
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:')
    throw new TypeError(`unsupported URL scheme: ${target.protocol}`);
  if (query) {
    const entries =
      query instanceof URLSearchParams || Array.isArray(query)
        ? [...(query as Iterable<readonly [string, string]>)]
        : Object.entries(query).flatMap(([k, v]) =>
            v === undefined
              ? []
              : Array.isArray(v)
                ? v.map(x => [k, String(x)] as const)
                : [[k, String(v)] as const],
          );
    for (const [k, v] of entries) target.searchParams.append(k, v);
  }
  return target;
}
