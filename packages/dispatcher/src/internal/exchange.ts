import { STATUS_CODES } from 'node:http';
import type { Dispatcher } from 'undici';
import { AbortedError, isXError } from '@x/resilience';
import {
  BackendError,
  DeadlineExceededError,
  DispatcherError,
  PayloadTooLargeError,
} from '../errors.js';
import type { HeaderList, RequestKind, ResponseTuple } from '../types.js';
import { concat, readAll } from './body.js';
import {
  HOP_BY_HOP,
  connectionTokens,
  getHeader,
  objectToHeaderList,
  rawToHeaderList,
} from './headers.js';
import { InProcessRequest, normalizeResponse } from './inProcessRequest.js';
import type { Instance } from './instance.js';

/** A request ready to be sent to one instance. */
export interface PreparedRequest {
  readonly method: string;
  /** Path and query. */
  readonly url: string;
  /** Lowercase names. */
  readonly headers: HeaderList;
  readonly body: Uint8Array | AsyncIterable<Uint8Array> | null;
  readonly sourceIp: string;
  readonly kind: RequestKind;
}

/** Limits applied while exchanging. */
export interface ExchangeLimits {
  readonly maxBodyBytes: number;
  readonly maxResponseBytes: number;
}

/** Maps an error from undici (or anything) into a dispatcher error. */
export function toBackendError(error: unknown, instance: Instance): unknown {
  if (error instanceof DispatcherError || isXError(error)) return error;
  const code = (error as { code?: string })?.code;
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT')
    return new DeadlineExceededError(0, `instance ${instance.id} did not answer in time (${code})`);
  return new BackendError(
    `instance ${instance.owner.module}/${instance.owner.version}/${instance.id} failed: ${code ? `${code} ` : ''}${(error as Error)?.message ?? String(error)}`,
    { cause: error },
  );
}

/** Flattens a header list for undici, without hop-by-hop headers and with `content-length` dropped when undici computes it. */
export function upstreamHeaders(list: HeaderList, dropContentLength: boolean): string[] {
  const connection = connectionTokens(getHeader(list, 'connection'));
  const out: string[] = [];
  for (const [name, value] of list) {
    if (HOP_BY_HOP.has(name) || (connection.length > 0 && connection.includes(name))) continue;
    if (dropContentLength && name === 'content-length') continue;
    out.push(name, value);
  }
  return out;
}

/**
 * Sends `request` to `instance` and collects the answer as a {@link ResponseTuple}
 * (in-process: calls the handler; out-of-process: an undici dispatch on the instance's pool).
 */
export function exchangeToTuple(
  instance: Instance,
  request: PreparedRequest,
  limits: ExchangeLimits,
  signal: AbortSignal,
): Promise<ResponseTuple> {
  const runtime = instance.runtime;
  if (instance.pool === undefined) {
    if (runtime?.handle === undefined)
      return Promise.reject(new BackendError(`instance ${instance.id} is not running`));
    return inProcessToTuple(instance, request, limits, signal);
  }
  const pool = instance.pool;
  return new Promise<ResponseTuple>((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const handler = new CollectHandler(limits.maxResponseBytes, instance, resolve, reject, signal);
    const body = request.body;
    try {
      pool.dispatch(
        {
          path: request.url,
          method: request.method,
          headers: upstreamHeaders(request.headers, body instanceof Uint8Array),
          body: body as Dispatcher.DispatchOptions['body'],
        },
        handler,
      );
    } catch (error) {
      handler.fail(error);
    }
  });
}

class CollectHandler implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined;
  private status = 0;
  private reason = '';
  private headers: HeaderList = [];
  private chunks: Uint8Array[] = [];
  private size = 0;
  private settled = false;
  private readonly onAbort: () => void;

  constructor(
    private readonly limit: number,
    private readonly instance: Instance,
    private readonly resolve: (tuple: ResponseTuple) => void,
    private readonly reject: (error: unknown) => void,
    private readonly signal: AbortSignal,
  ) {
    this.onAbort = () => {
      const reason = signal.reason;
      if (this.controller) this.controller.abort(reason);
      this.fail(reason);
    };
    signal.addEventListener('abort', this.onAbort, { once: true });
  }

  fail(error: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.signal.removeEventListener('abort', this.onAbort);
    this.reject(this.signal.aborted ? this.signal.reason : toBackendError(error, this.instance));
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.signal.aborted) controller.abort(this.signal.reason);
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
    statusMessage?: string,
  ): void {
    if (statusCode < 200) return; // 1xx informational
    this.status = statusCode;
    this.reason = statusMessage || STATUS_CODES[statusCode] || '';
    const raw = controller.rawHeaders;
    this.headers = Array.isArray(raw)
      ? rawToHeaderList(raw as Array<Buffer | string>)
      : objectToHeaderList(headers);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.size += chunk.byteLength;
    if (this.size > this.limit) {
      const error = new PayloadTooLargeError(this.limit);
      controller.abort(error);
      this.fail(error);
      return;
    }
    this.chunks.push(chunk);
  }

  onResponseEnd(): void {
    if (this.settled) return;
    this.settled = true;
    this.signal.removeEventListener('abort', this.onAbort);
    this.resolve({
      status: this.status,
      reason: this.reason,
      headers: this.headers,
      body: concat(this.chunks, this.size),
    });
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.fail(error);
  }
}

async function inProcessToTuple(
  instance: Instance,
  request: PreparedRequest,
  limits: ExchangeLimits,
  signal: AbortSignal,
): Promise<ResponseTuple> {
  const req = new InProcessRequest(
    request.method,
    request.url,
    request.headers,
    request.body,
    request.sourceIp,
    request.kind,
    instance.context,
    signal,
    limits.maxBodyBytes,
  );
  const abort = new Promise<never>((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason ?? new AbortedError()), {
      once: true,
    });
  });
  abort.catch(() => {});
  let result;
  try {
    result = await Promise.race([
      Promise.resolve().then(() => instance.runtime!.handle!(req)),
      abort,
    ]);
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    if (error instanceof BackendError || error instanceof PayloadTooLargeError) throw error;
    instance.context.log.error({ err: error }, 'in-process handler failed');
    return {
      status: 500,
      reason: 'Internal Server Error',
      headers: [['content-type', 'text/plain; charset=utf-8']],
      body: Buffer.from('Internal Server Error'),
    };
  }
  const normalized = normalizeResponse(result);
  const body = await Promise.race([readAll(normalized.body, limits.maxResponseBytes), abort]);
  return {
    status: normalized.status,
    reason: normalized.reason,
    headers: normalized.headers,
    body,
  };
}
