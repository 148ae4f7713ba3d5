import { brotliDecompressSync, gunzipSync, inflateSync, type ZlibOptions } from 'node:zlib';
import type { DecodeMode } from '../restCallOptions.js';
import {
  ResponseDecodeError,
  ResponseTooLargeError,
  type RestClientErrorOptions,
} from '../errors.js';

/**
 * The content type of a response: undici gives a repeated `Content-Type` header as an array; the
 * first one counts (as for `Retry-After` and `X-Response-Time`).
 */
export function contentTypeOf(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** True for JSON media types: `application/json`, `*\/*+json`, lupyne's `text/x-json`. */
export function isJsonType(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  if (contentType.startsWith('application/json')) {
    const next = contentType.charCodeAt(16);
    if (next !== next || next === 59 /* ; */ || next === 32 /* space */) return true;
  }
  const semi = contentType.indexOf(';');
  const type = (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  return type === 'application/json' || type.endsWith('+json') || type === 'text/x-json';
}

const SNIPPET = 200;

/**
 * Decodes a body read as text. JSON for `json`, or for `auto` with a JSON content type; an empty
 * JSON body is `undefined`. Malformed JSON throws `DECODE` for a 2xx status; for other statuses
 * the text is kept (error pages are often mislabelled) so the `HttpStatusError` still shows it.
 */
export function decodeText(
  text: string,
  contentType: string | undefined,
  mode: DecodeMode,
  status: number,
  source: { info(): RestClientErrorOptions },
): unknown {
  if (mode === 'text' || (mode === 'auto' && !isJsonType(contentType))) return text;
  if (text.length === 0) return undefined;
  try {
    return JSON.parse(text);
  } catch (error) {
    if (status < 200 || status >= 300) return text;
    throw new ResponseDecodeError(status, contentType, text.slice(0, SNIPPET), {
      ...source.info(),
      cause: error,
    });
  }
}

/** Decompresses a body by its `content-encoding` (gzip, deflate, br), bounded by `maxSize`. */
export function decompress(
  data: Uint8Array,
  encoding: string,
  maxSize: number,
  status: number,
  contentType: string | undefined,
  info: RestClientErrorOptions,
): Uint8Array {
  const codings = encoding
    .toLowerCase()
    .split(',')
    .map(s => s.trim())
    .filter(s => s !== '' && s !== 'identity');
  let out = data;
  const options: ZlibOptions =
    maxSize >= 0 && maxSize < Infinity ? { maxOutputLength: Math.max(1, maxSize) } : {};
  for (let i = codings.length - 1; i >= 0; i--) {
    const coding = codings[i]!;
    try {
      if (coding === 'gzip' || coding === 'x-gzip') out = gunzipSync(out, options);
      else if (coding === 'deflate') out = inflateSync(out, options);
      else if (coding === 'br') out = brotliDecompressSync(out, options);
      else throw new Error(`unsupported content-encoding ${JSON.stringify(coding)}`);
    } catch (error) {
      if ((error as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE')
        throw new ResponseTooLargeError(maxSize, { ...info, cause: error });
      throw new ResponseDecodeError(
        status,
        contentType,
        Buffer.from(out.subarray(0, SNIPPET)).toString('latin1'),
        { ...info, cause: error },
      );
    }
  }
  return out;
}
