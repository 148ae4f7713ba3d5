import { WorkerRpcError } from './errors.js';

/** Version byte of the `wrpc/1` header. */
export const PROTOCOL_VERSION = 1;

/** Message kinds of `wrpc/1` (the second header byte). */
export const Kind = Object.freeze({
  /** Request: client → worker, with a body (params). */
  REQ: 1,
  /** Result: worker → client, with a body (the value). */
  RES: 2,
  /** Error: worker → client, with a body `{ code, message, retryable, details, appCode }`. */
  ERR: 3,
  /** Early acknowledgement (toto's `@asynchronous`): the worker accepted the request. */
  ACK: 4,
  /** Client → worker: abort the handler of request `id` (best effort). */
  CANCEL: 5,
  /** Worker → client/broker: `credit` free slots. */
  CREDIT: 6,
  /** Liveness probe; answered with PONG (carrying credit). */
  PING: 7,
  PONG: 8,
  /** Worker → clients/broker: leaving, send nothing new. */
  DRAIN: 9,
} as const);

/** A message kind number. */
export type KindValue = (typeof Kind)[keyof typeof Kind];

/** Kind names by number, for logs and errors. */
export const KIND_NAMES: Readonly<Record<number, string>> = Object.freeze({
  1: 'REQ',
  2: 'RES',
  3: 'ERR',
  4: 'ACK',
  5: 'CANCEL',
  6: 'CREDIT',
  7: 'PING',
  8: 'PONG',
  9: 'DRAIN',
});

/** Header flag: the method is idempotent or the call carries an idempotency key (dedupe on). */
export const FLAG_IDEMPOTENT = 0x01;
/** Header flag: the body frame is compressed with the header's `encoding`. */
export const FLAG_COMPRESSED = 0x02;
/** Header flag (REQ): send an ACK as soon as the request is accepted (`ack: 'delivery'`). */
export const FLAG_ACK = 0x04;

/** Size of the fixed part of the header. */
export const FIXED_HEADER_BYTES = 28;
/** Smallest valid header (fixed part plus empty variable fields). */
export const MIN_HEADER_BYTES = FIXED_HEADER_BYTES + 7;
/** Largest header (every length field is at most 16 bits). */
export const MAX_HEADER_BYTES = 65_535;
/** Length of a request id. */
export const ID_BYTES = 16;
/** `credit` value meaning "not advertised". */
export const CREDIT_UNKNOWN = 0xffff_ffff;
/** Largest budget the header can carry (about 24.8 days); longer budgets are clamped. */
export const MAX_BUDGET_MS = 0x7fff_ffff;
/** Most metadata entries per header. */
export const MAX_META_ENTRIES = 64;

/** The decoded `wrpc/1` header frame. */
export interface WireHeader {
  readonly version: number;
  readonly kind: KindValue;
  /** Bit set of `FLAG_*`. */
  readonly flags: number;
  /** 0 for the first attempt; retries and hedges reuse `id` and bump it (0–255). */
  readonly attempt: number;
  /** 16-byte request id (8-byte connection nonce + 8-byte sequence from our clients). */
  readonly id: Uint8Array;
  /** REQ: remaining budget in ms when sent, -1 for none. Other kinds: -1. */
  readonly budgetMs: number;
  /** Free slots advertised by the sender, or -1 when not advertised. */
  readonly credit: number;
  /** Codec of the body (`json`, `msgpack`, ...). */
  readonly codec: string;
  /** Compression the client uses and accepts for replies ('' = none); see `FLAG_COMPRESSED`. */
  readonly encoding: string;
  /** REQ: dotted method name. */
  readonly method: string;
  /** REQ: idempotency key ('' = none); dedupe uses it instead of `id`. */
  readonly key: string;
  /** Small string map (traceparent, tenant, ...); undefined when empty. */
  readonly meta: Readonly<Record<string, string>> | undefined;
}

/** Fields of {@link encodeHeader}; omitted ones take neutral values. */
export interface HeaderFields {
  readonly kind: KindValue;
  readonly id: Uint8Array;
  readonly flags?: number;
  readonly attempt?: number;
  readonly budgetMs?: number;
  readonly credit?: number;
  readonly codec?: string;
  readonly encoding?: string;
  readonly method?: string;
  readonly key?: string;
  readonly meta?: Readonly<Record<string, string>> | undefined;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function bad(message: string): WorkerRpcError {
  return new WorkerRpcError('BAD_FRAME', `wrpc/1: ${message}`);
}

/** Byte length of `s` in UTF-8 without allocating for ASCII. */
function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/**
 * Encodes a `wrpc/1` header frame (little-endian):
 *
 * | offset | size | field |
 * |---|---|---|
 * | 0 | 1 | version (1) |
 * | 1 | 1 | kind |
 * | 2 | 1 | flags |
 * | 3 | 1 | attempt |
 * | 4 | 16 | id |
 * | 20 | 4 | budget ms, int32 (-1 none) |
 * | 24 | 4 | credit, uint32 (0xFFFFFFFF none) |
 * | 28 | 1+n | codec (u8 length + ASCII) |
 * | | 1+n | encoding (u8 length + ASCII) |
 * | | 2+n | method (u16 length + UTF-8) |
 * | | 1+n | idempotency key (u8 length + UTF-8) |
 * | | 2+n | meta (u16 length + entries of u8 key length, key, u16 value length, value) |
 *
 * Throws `RangeError`/`TypeError` for fields that do not fit.
 */
export function encodeHeader(fields: HeaderFields): Buffer {
  const {
    kind,
    id,
    flags = 0,
    attempt = 0,
    codec = '',
    encoding = '',
    method = '',
    key = '',
    meta,
  } = fields;
  if (id.byteLength !== ID_BYTES) throw new RangeError(`id must be ${ID_BYTES} bytes`);
  if (codec.length > 255 || encoding.length > 255)
    throw new RangeError('codec and encoding names are at most 255 bytes');
  const methodBytes = utf8Length(method);
  const keyBytes = utf8Length(key);
  if (methodBytes > 0xffff) throw new RangeError('method name too long');
  if (keyBytes > 255) throw new RangeError('idempotency key is at most 255 bytes');
  let metaBytes = 0;
  let metaEntries: [string, string][] | undefined;
  if (meta) {
    metaEntries = Object.entries(meta);
    if (metaEntries.length > MAX_META_ENTRIES)
      throw new RangeError(`at most ${MAX_META_ENTRIES} meta entries`);
    for (const [k, v] of metaEntries) {
      if (typeof v !== 'string') throw new TypeError(`meta values must be strings (${k})`);
      const kb = utf8Length(k);
      const vb = utf8Length(v);
      if (kb === 0 || kb > 255 || vb > 0xffff) throw new RangeError(`meta entry ${k} too long`);
      metaBytes += 3 + kb + vb;
    }
    if (metaBytes > 0xffff) throw new RangeError('meta too large');
  }
  const size =
    MIN_HEADER_BYTES + codec.length + encoding.length + methodBytes + keyBytes + metaBytes;
  if (size > MAX_HEADER_BYTES) throw new RangeError('header too large');
  const buf = Buffer.allocUnsafe(size);
  buf[0] = PROTOCOL_VERSION;
  buf[1] = kind;
  buf[2] = flags & 0xff;
  buf[3] = Math.min(255, Math.max(0, attempt | 0));
  buf.set(id, 4);
  const budget = fields.budgetMs;
  buf.writeInt32LE(
    budget === undefined || budget < 0 ? -1 : Math.min(MAX_BUDGET_MS, Math.ceil(budget)),
    20,
  );
  const credit = fields.credit;
  buf.writeUInt32LE(
    credit === undefined || credit < 0
      ? CREDIT_UNKNOWN
      : Math.min(CREDIT_UNKNOWN - 1, Math.floor(credit)),
    24,
  );
  let o = FIXED_HEADER_BYTES;
  buf[o++] = codec.length;
  o += buf.write(codec, o, 'latin1');
  buf[o++] = encoding.length;
  o += buf.write(encoding, o, 'latin1');
  buf.writeUInt16LE(methodBytes, o);
  o += 2;
  o += buf.write(method, o, 'utf8');
  buf[o++] = keyBytes;
  o += buf.write(key, o, 'utf8');
  buf.writeUInt16LE(metaBytes, o);
  o += 2;
  if (metaEntries) {
    for (const [k, v] of metaEntries) {
      const kb = utf8Length(k);
      buf[o++] = kb;
      o += buf.write(k, o, 'utf8');
      buf.writeUInt16LE(utf8Length(v), o);
      o += 2;
      o += buf.write(v, o, 'utf8');
    }
  }
  return buf;
}

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** Reads a u8-length name (`a-z 0-9 . _ + -`) at `o`; the caller skips `1 + buf[o]` bytes. */
function readName(buf: Buffer, o: number, end: number, what: string): string {
  const len = buf[o]!;
  const start = o + 1;
  if (start + len > end) throw bad(`truncated ${what}`);
  for (let i = start; i < start + len; i++) {
    const c = buf[i]!;
    // a-z 0-9 . _ + -
    if (!(
      (c >= 0x61 && c <= 0x7a) ||
      (c >= 0x30 && c <= 0x39) ||
      c === 0x2e ||
      c === 0x5f ||
      c === 0x2b ||
      c === 0x2d
    )) {
      throw bad(`invalid ${what} name`);
    }
  }
  return len === 0 ? '' : intern(buf, start, len);
}

const COMMON_NAMES = ['json', 'msgpack', 'gzip', 'deflate', 'br'];

/** The usual codec/compression names without allocating a new string per header. */
function intern(buf: Buffer, start: number, len: number): string {
  for (const name of COMMON_NAMES) {
    if (name.length !== len) continue;
    let same = true;
    for (let i = 0; i < len; i++) {
      if (buf[start + i] !== name.charCodeAt(i)) {
        same = false;
        break;
      }
    }
    if (same) return name;
  }
  return buf.toString('latin1', start, start + len);
}

/**
 * The last ASCII method names decoded (a worker mostly sees the same few): a header naming one of
 * them reuses the string instead of allocating a new one (and hashing it again for the handler
 * lookup).
 */
const recentMethods: string[] = [];
const RECENT_METHODS = 8;
let recentNext = 0;

function readMethod(buf: Buffer, start: number, len: number, end: number): string {
  if (len === 0 || len > 128 || start + len > end) return readText(buf, start, len, end, 'method');
  for (let k = 0; k < recentMethods.length; k++) {
    const name = recentMethods[k]!;
    if (name.length !== len) continue;
    let i = 0;
    while (i < len && buf[start + i] === name.charCodeAt(i)) i++;
    if (i === len) return name;
  }
  const method = readText(buf, start, len, end, 'method');
  for (let i = 0; i < len; i++) if (method.charCodeAt(i) > 0x7f) return method;
  recentMethods[recentNext] = method;
  recentNext = (recentNext + 1) % RECENT_METHODS;
  return method;
}

function readText(buf: Buffer, start: number, len: number, end: number, what: string): string {
  if (start + len > end) throw bad(`truncated ${what}`);
  if (len === 0) return '';
  // ASCII fast path; otherwise strict UTF-8 (invalid sequences are a bad frame, not U+FFFD).
  let ascii = true;
  for (let i = start; i < start + len; i++) {
    if (buf[i]! > 0x7f) {
      ascii = false;
      break;
    }
  }
  if (ascii) return buf.toString('latin1', start, start + len);
  try {
    return utf8.decode(buf.subarray(start, start + len));
  } catch {
    throw bad(`${what} is not valid UTF-8`);
  }
}

/** Reads only the id of a header that is at least {@link FIXED_HEADER_BYTES} long (for error replies to bad frames). */
export function peekId(data: Uint8Array): Uint8Array | undefined {
  if (data.byteLength < FIXED_HEADER_BYTES || data[0] !== PROTOCOL_VERSION) return undefined;
  return data.subarray(4, 4 + ID_BYTES);
}

/**
 * Decodes and validates a `wrpc/1` header frame. Throws a `WorkerRpcError`: `FRAME_TOO_LARGE`
 * above {@link MAX_HEADER_BYTES}, `UNSUPPORTED` for another version or an unknown kind, and
 * `BAD_FRAME` for anything truncated, oversized, trailing or not UTF-8.
 */
export function decodeHeader(data: Uint8Array): WireHeader {
  const buf = asBuffer(data);
  const end = buf.byteLength;
  if (end > MAX_HEADER_BYTES)
    throw new WorkerRpcError('FRAME_TOO_LARGE', `wrpc/1: header of ${end} bytes`);
  if (end < MIN_HEADER_BYTES) throw bad(`header of ${end} bytes is truncated`);
  const version = buf[0]!;
  if (version !== PROTOCOL_VERSION)
    throw new WorkerRpcError('UNSUPPORTED', `wrpc/1: unsupported protocol version ${version}`);
  const kind = buf[1]!;
  if (kind < Kind.REQ || kind > Kind.DRAIN)
    throw new WorkerRpcError('UNSUPPORTED', `wrpc/1: unknown message kind ${kind}`);
  const flags = buf[2]!;
  const attempt = buf[3]!;
  const id = buf.subarray(4, 4 + ID_BYTES);
  const budgetMs = buf.readInt32LE(20);
  const rawCredit = buf.readUInt32LE(24);
  const credit = rawCredit === CREDIT_UNKNOWN ? -1 : rawCredit;
  const codec = readName(buf, FIXED_HEADER_BYTES, end, 'codec');
  const afterCodec = FIXED_HEADER_BYTES + 1 + buf[FIXED_HEADER_BYTES]!;
  if (afterCodec >= end) throw bad('truncated encoding');
  const encoding = readName(buf, afterCodec, end, 'encoding');
  let o = afterCodec + 1 + buf[afterCodec]!;
  if (o + 2 > end) throw bad('truncated method');
  const methodLen = buf.readUInt16LE(o);
  o += 2;
  const method = readMethod(buf, o, methodLen, end);
  o += methodLen;
  if (o + 1 > end) throw bad('truncated key');
  const keyLen = buf[o++]!;
  const key = readText(buf, o, keyLen, end, 'key');
  o += keyLen;
  if (o + 2 > end) throw bad('truncated meta');
  const metaLen = buf.readUInt16LE(o);
  o += 2;
  if (o + metaLen !== end)
    throw bad(o + metaLen > end ? 'truncated meta' : 'trailing bytes after header');
  let meta: Record<string, string> | undefined;
  if (metaLen > 0) {
    meta = Object.create(null) as Record<string, string>;
    let entries = 0;
    while (o < end) {
      if (++entries > MAX_META_ENTRIES) throw bad('too many meta entries');
      const kl = buf[o++]!;
      if (kl === 0) throw bad('empty meta key');
      const k = readText(buf, o, kl, end, 'meta key');
      o += kl;
      if (o + 2 > end) throw bad('truncated meta value');
      const vl = buf.readUInt16LE(o);
      o += 2;
      meta[k] = readText(buf, o, vl, end, 'meta value');
      o += vl;
    }
  }
  if (kind === Kind.REQ && method.length === 0) throw bad('request without a method');
  return {
    version,
    kind: kind as KindValue,
    flags,
    attempt,
    id,
    budgetMs: budgetMs < 0 ? -1 : budgetMs,
    credit,
    codec,
    encoding,
    method,
    key,
    meta,
  };
}

/** A request id as a compact map key (16 latin1 characters). */
export function idKey(id: Uint8Array): string {
  return asBuffer(id).toString('latin1');
}

/** A request id as 32 lowercase hex characters (what `ctx.requestId` and `x-request-id` show). */
export function idHex(id: Uint8Array): string {
  return asBuffer(id).toString('hex');
}

/** Rewrites the budget (int32 at offset 20) of an encoded header in place (routers do this after queueing). */
export function setHeaderBudget(header: Uint8Array, budgetMs: number): void {
  asBuffer(header).writeInt32LE(
    budgetMs < 0 ? -1 : Math.min(MAX_BUDGET_MS, Math.ceil(budgetMs)),
    20,
  );
}

/** Rewrites the credit (uint32 at offset 24) of an encoded header in place. */
export function setHeaderCredit(header: Uint8Array, credit: number): void {
  asBuffer(header).writeUInt32LE(
    credit < 0 ? CREDIT_UNKNOWN : Math.min(CREDIT_UNKNOWN - 1, Math.floor(credit)),
    24,
  );
}
