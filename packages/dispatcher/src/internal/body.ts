import { InvalidRequestError, PayloadTooLargeError } from '../errors.js';
import type { BodyInput } from '../types.js';

const EMPTY = new Uint8Array(0);
const encoder = new TextEncoder();

/**
 * Turns any {@link BodyInput} into an async iterable of byte chunks (or null for no body),
 * checking types so bad input gets `INVALID_REQUEST` instead of a crash later.
 */
export function bodyToIterable(body: BodyInput): Uint8Array | AsyncIterable<Uint8Array> | null {
  if (body === undefined || body === null) return null;
  if (typeof body === 'string') return encoder.encode(body);
  if (body instanceof Uint8Array) return body;
  if (typeof ReadableStream !== 'undefined' && body instanceof ReadableStream) {
    return readableStreamIterable(body);
  }
  if (typeof (body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] === 'function') {
    return body as AsyncIterable<Uint8Array>;
  }
  throw new InvalidRequestError(
    'body must be a string, a Uint8Array, a ReadableStream or an async iterable of Uint8Array',
  );
}

async function* readableStreamIterable(
  stream: ReadableStream<Uint8Array>,
): AsyncIterable<Uint8Array> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}

/** Reads a body into one buffer, failing with `PAYLOAD_TOO_LARGE` past `limit` bytes. */
export async function readAll(
  body: Uint8Array | AsyncIterable<Uint8Array> | null,
  limit: number,
): Promise<Uint8Array> {
  if (body === null) return EMPTY;
  if (body instanceof Uint8Array) {
    if (body.byteLength > limit) throw new PayloadTooLargeError(limit);
    return body;
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body) {
    const bytes =
      typeof chunk === 'string' ? encoder.encode(chunk) : (chunk as unknown as Uint8Array);
    if (!(bytes instanceof Uint8Array))
      throw new InvalidRequestError('body chunks must be Uint8Array');
    size += bytes.byteLength;
    if (size > limit) throw new PayloadTooLargeError(limit);
    chunks.push(bytes);
  }
  return concat(chunks, size);
}

/** Concatenates chunks of known total size. */
export function concat(chunks: readonly Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 0) return EMPTY;
  if (chunks.length === 1) return chunks[0]!;
  const out = Buffer.allocUnsafe(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}
