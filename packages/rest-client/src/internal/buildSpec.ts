import { randomUUID } from 'node:crypto';
import type { RestCallOptions, DecodeMode } from '../restCallOptions.js';
import { InvalidCallError } from '../errors.js';
import { IDEMPOTENT_METHODS, READ_METHODS, type CallSpec } from './callSpec.js';
import { resolveTimeouts } from './config.js';
import { buildPath, type RestQuery } from './path.js';

/** Client defaults a call starts from. */
export interface SpecDefaults {
  readonly headers: Readonly<Record<string, string>> | undefined;
  readonly decode: DecodeMode;
  readonly totalMs: number;
  readonly perTryMs: number;
  readonly hedge: boolean;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const KNOWN = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'TRACE']);
const DECODES = new Set(['auto', 'json', 'text', 'bytes']);

function method(value: unknown): string {
  if (typeof value === 'string') {
    if (KNOWN.has(value)) return value;
    const upper = value.toUpperCase();
    if (KNOWN.has(upper)) return upper;
    if (TOKEN.test(value) && value.length <= 64 && upper !== 'CONNECT') return value;
  }
  throw new InvalidCallError(`invalid HTTP method: ${JSON.stringify(value)}`);
}

/**
 * Validates a call and resolves it against the client defaults. `json` (when `hasJson`) and `query`
 * come from the verb methods' positional arguments and win over `options`. Throws
 * `INVALID_REQUEST` on bad input.
 */
export function buildSpec(
  defaults: SpecDefaults,
  rawMethod: unknown,
  path: unknown,
  options: RestCallOptions | undefined,
  query?: RestQuery,
  json?: unknown,
  hasJson = false,
): CallSpec {
  const m = method(rawMethod);
  if (options === undefined) {
    return {
      method: m,
      path: buildPath(path, query),
      headers:
        hasJson && json !== undefined ? withJson(defaults.headers, undefined) : defaults.headers,
      body: hasJson && json !== undefined ? stringify(json) : undefined,
      idempotent: IDEMPOTENT_METHODS.has(m),
      decode: defaults.decode,
      signal: undefined,
      totalMs: defaults.totalMs,
      perTryMs: defaults.perTryMs,
      startedAt: 0,
      deadline: Infinity,
      retry: true,
      hedge: defaults.hedge && READ_METHODS.has(m),
    };
  }
  if (typeof options !== 'object' || options === null)
    throw new InvalidCallError('call options must be an object');
  const fullPath = buildPath(path, query ?? options.query);
  let headers = defaults.headers;
  if (options.headers !== undefined) {
    if (typeof options.headers !== 'object' || options.headers === null)
      throw new InvalidCallError('headers must be an object');
    headers = { ...headers, ...options.headers };
  }
  let body: string | Uint8Array | undefined;
  const jsonValue = hasJson ? json : options.json;
  if (jsonValue !== undefined) {
    if (options.body !== undefined)
      throw new InvalidCallError('pass either json or body, not both');
    body = stringify(jsonValue);
    headers = withJson(headers, options.headers);
  } else if (options.body !== undefined) {
    if (typeof options.body !== 'string' && !(options.body instanceof Uint8Array))
      throw new InvalidCallError('body must be a string or a Uint8Array');
    body = options.body;
  }
  let idempotent = IDEMPOTENT_METHODS.has(m);
  if (options.idempotencyKey !== undefined) {
    const key = options.idempotencyKey === true ? randomUUID() : options.idempotencyKey;
    if (
      typeof key !== 'string' ||
      key.length === 0 ||
      key.length > 255 ||
      !/^[\x21-\x7e]+$/.test(key)
    ) {
      throw new InvalidCallError(
        `idempotencyKey must be true or 1-255 visible ASCII characters, got ${JSON.stringify(options.idempotencyKey)}`,
      );
    }
    headers = { ...headers, 'idempotency-key': key };
    idempotent = true;
  }
  if (options.idempotent !== undefined) idempotent = options.idempotent === true;
  const decode = options.decode ?? defaults.decode;
  if (!DECODES.has(decode))
    throw new InvalidCallError(
      `decode must be auto, json, text or bytes, got ${JSON.stringify(decode)}`,
    );
  const signal = options.signal;
  if (
    signal !== undefined &&
    (typeof signal !== 'object' || signal === null || typeof signal.addEventListener !== 'function')
  ) {
    throw new InvalidCallError('signal must be an AbortSignal');
  }
  const { totalMs, perTryMs } = resolveTimeouts(
    options.timeout,
    defaults.totalMs,
    defaults.perTryMs,
  );
  return {
    method: m,
    path: fullPath,
    headers,
    body,
    idempotent,
    decode,
    signal,
    totalMs,
    perTryMs,
    startedAt: 0,
    deadline: Infinity,
    retry: options.retry !== false,
    hedge: (options.hedge ?? defaults.hedge) && READ_METHODS.has(m),
  };
}

function stringify(value: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    throw new InvalidCallError(`json body cannot be serialised: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (text === undefined)
    throw new InvalidCallError(`json body cannot be serialised: ${typeof value}`);
  return text;
}

function withJson(
  headers: Readonly<Record<string, string>> | undefined,
  own: Readonly<Record<string, string>> | undefined,
): Record<string, string> {
  if (own !== undefined) {
    for (const name of Object.keys(own))
      if (name.toLowerCase() === 'content-type') return { ...headers };
  }
  return { ...headers, 'content-type': 'application/json' };
}
