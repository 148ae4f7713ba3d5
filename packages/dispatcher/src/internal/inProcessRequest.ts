import { STATUS_CODES } from 'node:http';
import type { InstanceContext, InstanceRequest, InstanceResponse } from '../backend.js';
import { BackendError, InvalidRequestError } from '../errors.js';
import type { HeaderList, RequestKind } from '../types.js';
import { readAll } from './body.js';
import { pairs, toHeaderList } from './headers.js';

const EMPTY_ITERABLE: AsyncIterable<Uint8Array> = {
  [Symbol.asyncIterator]: () => ({ next: async () => ({ done: true, value: undefined }) }),
};

/** Something that gives the request's abort signal when asked (created lazily). */
export interface SignalSource {
  readonly signal: AbortSignal;
}

/** The request object handed to in-process handlers. */
export class InProcessRequest implements InstanceRequest {
  readonly path: string;
  private list: HeaderList | undefined;
  private readonly flat: readonly string[] | undefined;
  private consumed = false;
  private readonly source: Uint8Array | AsyncIterable<Uint8Array> | null;

  constructor(
    readonly method: string,
    readonly url: string,
    /** `[name, value]` pairs (lowercase names), or a flat `name, value, …` list (any case). */
    headers: HeaderList | readonly string[],
    body: Uint8Array | AsyncIterable<Uint8Array> | null,
    readonly sourceIp: string,
    readonly kind: RequestKind,
    readonly instance: InstanceContext,
    private readonly signalSource: AbortSignal | SignalSource,
    private readonly maxBodyBytes: number,
  ) {
    const q = url.indexOf('?');
    this.path = q < 0 ? url : url.slice(0, q);
    this.source = body;
    if (headers.length > 0 && typeof headers[0] === 'string') this.flat = headers as string[];
    else this.list = headers as HeaderList;
  }

  /** Lowercase names, duplicates kept (built on first use from a flat list). */
  get headers(): HeaderList {
    return (this.list ??= pairs(this.flat!));
  }

  get signal(): AbortSignal {
    const source = this.signalSource;
    return source instanceof AbortSignal ? source : source.signal;
  }

  header(name: string): string | undefined {
    const lower = name.toLowerCase();
    for (const [n, v] of this.headers) if (n === lower) return v;
    return undefined;
  }

  get body(): AsyncIterable<Uint8Array> {
    if (this.consumed) throw new InvalidRequestError('the request body was read already');
    this.consumed = true;
    const source = this.source;
    if (source === null) return EMPTY_ITERABLE;
    if (source instanceof Uint8Array) {
      return {
        [Symbol.asyncIterator]: () => {
          let done = false;
          return {
            next: async () => {
              if (done) return { done: true, value: undefined };
              done = true;
              return { done: false, value: source };
            },
          };
        },
      };
    }
    return source;
  }

  bytes(): Promise<Uint8Array> {
    if (this.consumed)
      return Promise.reject(new InvalidRequestError('the request body was read already'));
    const source = this.source;
    this.consumed = true;
    return readAll(source, this.maxBodyBytes);
  }

  async text(): Promise<string> {
    return Buffer.from(await this.bytes()).toString('utf8');
  }

  async json(): Promise<unknown> {
    const text = await this.text();
    try {
      return JSON.parse(text);
    } catch (error) {
      throw new InvalidRequestError('request body is not valid JSON', { cause: error });
    }
  }
}

/** A validated in-process response. */
export interface NormalizedResponse {
  readonly status: number;
  readonly reason: string;
  readonly headers: HeaderList;
  readonly body: Uint8Array | AsyncIterable<Uint8Array> | null;
}

const encoder = new TextEncoder();

/**
 * Checks what a handler returned; anything malformed becomes a BACKEND_ERROR. With
 * `keepStrings`, a string body stays a string (the front door writes it with the head).
 */
export function normalizeResponse(
  response: InstanceResponse | undefined,
  keepStrings: true,
): Omit<NormalizedResponse, 'body'> & { body: NormalizedResponse['body'] | string };
export function normalizeResponse(response: InstanceResponse | undefined): NormalizedResponse;
export function normalizeResponse(
  response: InstanceResponse | undefined,
  keepStrings = false,
): Omit<NormalizedResponse, 'body'> & { body: NormalizedResponse['body'] | string } {
  if (typeof response !== 'object' || response === null)
    throw new BackendError('the in-process handler returned no response object');
  const status = response.status ?? 200;
  if (!Number.isInteger(status) || status < 200 || status > 599)
    throw new BackendError(`the in-process handler returned an invalid status ${String(status)}`);
  let headers: HeaderList;
  try {
    headers = toHeaderList(response.headers);
  } catch (error) {
    throw new BackendError('the in-process handler returned invalid headers', { cause: error });
  }
  const reason = response.reason ?? STATUS_CODES[status] ?? '';
  if (typeof reason !== 'string' || (response.reason !== undefined && /[\r\n]/.test(reason)))
    throw new BackendError('the in-process handler returned an invalid reason');
  const body = response.body;
  let out: NormalizedResponse['body'] | string;
  if (body === undefined || body === null) out = null;
  else if (typeof body === 'string') out = keepStrings ? body : encoder.encode(body);
  else if (body instanceof Uint8Array) out = body;
  else if (typeof (body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] === 'function')
    out = body;
  else throw new BackendError('the in-process handler returned an invalid body');
  return { status, reason, headers, body: out };
}
