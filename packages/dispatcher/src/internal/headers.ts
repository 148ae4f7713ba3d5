import { InvalidRequestError } from '../errors.js';
import type { HeaderList, HeadersInput } from '../types.js';

/** Hop-by-hop headers (RFC 9110 §7.6.1 plus the legacy proxy ones): never forwarded. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
]);

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

const BAD_VALUE = /[\0\r\n]/;

/** True for a valid HTTP method (a token). */
export function isMethod(method: string): boolean {
  return method.length <= 32 && TOKEN.test(method);
}

/**
 * Normalises any {@link HeadersInput} into a list of `[lowercase name, value]` pairs, keeping
 * duplicates and order. Throws `INVALID_REQUEST` for a bad name or a value with CR, LF or NUL.
 */
export function toHeaderList(input: HeadersInput | undefined): HeaderList {
  const out: HeaderList = [];
  if (input === undefined || input === null) return out;
  const add = (name: unknown, value: unknown) => {
    if (typeof name !== 'string' || !TOKEN.test(name))
      throw new InvalidRequestError(`invalid header name ${JSON.stringify(String(name))}`);
    const text = typeof value === 'string' ? value : String(value);
    if (BAD_VALUE.test(text))
      throw new InvalidRequestError(`invalid value for header ${JSON.stringify(name)}`);
    out.push([name.toLowerCase(), text]);
  };
  if (typeof Headers !== 'undefined' && input instanceof Headers) {
    for (const [name, value] of input) {
      if (name === 'set-cookie') continue;
      add(name, value);
    }
    for (const cookie of input.getSetCookie()) add('set-cookie', cookie);
    return out;
  }
  if (Array.isArray(input)) {
    for (const pair of input as ReadonlyArray<readonly [string, string]>) {
      if (!Array.isArray(pair) || pair.length !== 2)
        throw new InvalidRequestError('headers must be [name, value] pairs');
      add(pair[0], pair[1]);
    }
    return out;
  }
  if (typeof input !== 'object')
    throw new InvalidRequestError('headers must be a list or an object');
  for (const name of Object.keys(input)) {
    const value = (input as Record<string, unknown>)[name];
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) add(name, v);
    else add(name, value);
  }
  return out;
}

/** First value of `name` (lowercase) in a header list. */
export function getHeader(list: HeaderList, name: string): string | undefined {
  for (let i = 0; i < list.length; i++) {
    const pair = list[i]!;
    if (pair[0] === name) return pair[1];
  }
  return undefined;
}

/** The names listed in a `Connection` header value, lowercased. */
export function connectionTokens(value: string | undefined): string[] {
  if (!value) return [];
  return value
    .split(',')
    .map(s => s.trim().toLowerCase())
    .filter(Boolean);
}

/** Converts raw header buffers/strings (`[name, value, name, value…]`) into a header list. */
export function rawToHeaderList(raw: ReadonlyArray<Buffer | string>): HeaderList {
  const out: HeaderList = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    out.push([raw[i]!.toString('latin1').toLowerCase(), raw[i + 1]!.toString('latin1')]);
  }
  return out;
}

/** Converts an undici/Node header object (arrays for repeats) into a header list. */
export function objectToHeaderList(
  headers: Readonly<Record<string, string | string[] | undefined>>,
): HeaderList {
  const out: HeaderList = [];
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) out.push([name, v]);
    else out.push([name, value]);
  }
  return out;
}

/** A flat name/value list as `[lowercase name, value]` pairs. */
export function pairs(flat: readonly string[]): HeaderList {
  const out: HeaderList = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i]!.toLowerCase(), flat[i + 1]!]);
  return out;
}
