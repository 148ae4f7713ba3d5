import { Packr } from 'msgpackr';

/**
 * Turns values into bytes and back. Pluggable: any `{ name, contentType, encode, decode }` works
 * (toto's `dumps`/`loads`). Codecs never evaluate code; `pickle` is deliberately not offered.
 * `decode` must throw on malformed input, never return garbage silently.
 */
export interface Codec {
  /** Name carried in the wrpc/1 header (1–32 chars of `a-z0-9._+-`), e.g. `json`. */
  readonly name: string;
  /** MIME type used as the HTTP `content-type`. */
  readonly contentType: string;
  encode(value: unknown): Uint8Array;
  decode(data: Uint8Array): unknown;
}

/** Names accepted for codecs and compressors. */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9._+-]{0,31}$/;

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** The JSON codec (the default): UTF-8 `JSON.stringify` / `JSON.parse`. */
export function jsonCodec(): Codec {
  return JSON_CODEC;
}

const JSON_CODEC: Codec = Object.freeze({
  name: 'json',
  contentType: 'application/json',
  encode(value: unknown): Uint8Array {
    const text = JSON.stringify(value);
    if (text === undefined) throw new TypeError(`cannot encode ${typeof value} as JSON`);
    return Buffer.from(text, 'utf8');
  },
  decode(data: Uint8Array): unknown {
    // toString() without arguments is Node's UTF-8 fast path (no encoding lookup, no range checks)
    return JSON.parse(asBuffer(data).toString());
  },
});

/** Options of {@link msgpackCodec}. */
export interface MsgpackCodecOptions {
  /** Decode 64-bit integers as `'number'` (default), `'bigint'` or `'string'`. */
  readonly int64AsType?: 'number' | 'bigint' | 'string';
}

/**
 * MessagePack through msgpackr, with records (shared structures) off so that any MessagePack
 * implementation can read the bytes. msgpackr renames `__proto__` keys and never evaluates input.
 */
export function msgpackCodec(options: MsgpackCodecOptions = {}): Codec {
  const packr = new Packr({
    useRecords: false,
    mapsAsObjects: true,
    int64AsType: options.int64AsType ?? 'number',
    variableMapSize: true,
  });
  return Object.freeze({
    name: 'msgpack',
    contentType: 'application/msgpack',
    encode: (value: unknown): Uint8Array => packr.pack(value),
    decode: (data: Uint8Array): unknown => packr.unpack(asBuffer(data)),
  });
}

/** A codec by name (`json`, `msgpack`) or the codec itself (validated). Default JSON. */
export function resolveCodec(codec: Codec | 'json' | 'msgpack' | undefined): Codec {
  if (codec === undefined || codec === 'json') return JSON_CODEC;
  if (codec === 'msgpack') return msgpackCodec();
  if (
    typeof codec !== 'object' ||
    codec === null ||
    typeof codec.encode !== 'function' ||
    typeof codec.decode !== 'function'
  ) {
    throw new TypeError(
      'codec must be "json", "msgpack" or an object with name, encode and decode',
    );
  }
  if (typeof codec.name !== 'string' || !NAME_PATTERN.test(codec.name)) {
    throw new TypeError(`codec name must match ${NAME_PATTERN}, got ${String(codec.name)}`);
  }
  return codec;
}

/** The built-in codecs plus `extra`, by name. */
export function codecTable(extra: readonly Codec[] = []): Map<string, Codec> {
  const table = new Map<string, Codec>([
    ['json', JSON_CODEC],
    ['msgpack', msgpackCodec()],
  ]);
  for (const codec of extra) table.set(codec.name, resolveCodec(codec));
  return table;
}
