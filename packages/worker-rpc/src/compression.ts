import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import { NAME_PATTERN } from './codec.js';
import { WorkerRpcError } from './errors.js';

/**
 * Compresses bodies (toto's `compress`/`decompress` module). Either method may be synchronous or
 * return a Promise. `decompress` must refuse to produce more than `maxBytes` (zip bombs).
 */
export interface Compressor {
  /** Name carried in the wrpc/1 header and in HTTP `content-encoding`, e.g. `gzip`. */
  readonly name: string;
  compress(data: Uint8Array): Uint8Array | Promise<Uint8Array>;
  decompress(data: Uint8Array, maxBytes: number): Uint8Array | Promise<Uint8Array>;
}

/** Compression settings shared by clients and workers. */
export interface CompressionOptions {
  /** `gzip`, `deflate`, `br` or a {@link Compressor}. */
  readonly compressor: Compressor | 'gzip' | 'deflate' | 'br';
  /** Bodies smaller than this are sent as they are. Default 1024 bytes. toto mode ignores it. */
  readonly thresholdBytes?: number;
}

/** A compressor name, a {@link Compressor}, or full {@link CompressionOptions}. */
export type CompressionOption =
  CompressionOptions | Compressor | 'gzip' | 'deflate' | 'br' | 'none';

/** Bodies above this size are (de)compressed on the libuv thread pool instead of inline. */
const ASYNC_ABOVE = 256 * 1024;

type SyncFn = (data: zlib.InputType, options: zlib.ZlibOptions & zlib.BrotliOptions) => Buffer;
type AsyncFn = (
  data: zlib.InputType,
  options: zlib.ZlibOptions & zlib.BrotliOptions,
) => Promise<Buffer>;

function zlibCompressor(
  name: string,
  compressSync: SyncFn,
  compressAsync: AsyncFn,
  decompressSync: SyncFn,
  decompressAsync: AsyncFn,
  options: zlib.ZlibOptions & zlib.BrotliOptions,
): Compressor {
  const tooLarge = (error: unknown, maxBytes: number) =>
    (error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE'
      ? new WorkerRpcError('FRAME_TOO_LARGE', `${name} body inflates beyond ${maxBytes} bytes`, {
          cause: error,
        })
      : new WorkerRpcError('BAD_FRAME', `invalid ${name} body: ${(error as Error).message}`, {
          cause: error,
        });
  return Object.freeze({
    name,
    compress(data: Uint8Array) {
      return data.byteLength > ASYNC_ABOVE
        ? compressAsync(data, options)
        : compressSync(data, options);
    },
    decompress(data: Uint8Array, maxBytes: number) {
      const opts = { maxOutputLength: Math.max(1, maxBytes) };
      if (data.byteLength > ASYNC_ABOVE)
        return decompressAsync(data, opts).catch(error =>
          Promise.reject(tooLarge(error, maxBytes)),
        );
      try {
        return decompressSync(data, opts);
      } catch (error) {
        throw tooLarge(error, maxBytes);
      }
    },
  });
}

/** gzip from `node:zlib` (`level` default 6 as zlib's default). */
export function gzip(options: { level?: number } = {}): Compressor {
  return zlibCompressor(
    'gzip',
    zlib.gzipSync,
    promisify(zlib.gzip),
    zlib.gunzipSync,
    promisify(zlib.gunzip),
    { level: options.level ?? zlib.constants.Z_DEFAULT_COMPRESSION },
  );
}

/** deflate (zlib format) from `node:zlib`. */
export function deflate(options: { level?: number } = {}): Compressor {
  return zlibCompressor(
    'deflate',
    zlib.deflateSync,
    promisify(zlib.deflate),
    zlib.inflateSync,
    promisify(zlib.inflate),
    { level: options.level ?? zlib.constants.Z_DEFAULT_COMPRESSION },
  );
}

/** brotli from `node:zlib`; `quality` default 4 (brotli's 11 is far too slow for RPC). */
export function brotli(options: { quality?: number } = {}): Compressor {
  const params = { [zlib.constants.BROTLI_PARAM_QUALITY]: options.quality ?? 4 };
  return zlibCompressor(
    'br',
    zlib.brotliCompressSync,
    promisify(zlib.brotliCompress),
    zlib.brotliDecompressSync,
    promisify(zlib.brotliDecompress),
    { params },
  );
}

/** Validates a custom compressor (or builds a built-in by name). */
export function resolveCompressor(value: Compressor | 'gzip' | 'deflate' | 'br'): Compressor {
  if (value === 'gzip') return gzip();
  if (value === 'deflate') return deflate();
  if (value === 'br') return brotli();
  if (
    typeof value !== 'object' ||
    value === null ||
    typeof value.compress !== 'function' ||
    typeof value.decompress !== 'function'
  ) {
    throw new TypeError(
      'compression must be "gzip", "deflate", "br", "none" or an object with compress and decompress',
    );
  }
  const name = value.name ?? 'custom';
  if (typeof name !== 'string' || !NAME_PATTERN.test(name))
    throw new TypeError(`compressor name must match ${NAME_PATTERN}`);
  return value.name === undefined
    ? { name, compress: d => value.compress(d), decompress: (d, m) => value.decompress(d, m) }
    : value;
}

/** Resolved compression settings: `undefined` compressor means none. */
export interface ResolvedCompression {
  readonly compressor: Compressor | undefined;
  readonly thresholdBytes: number;
}

/** Normalises the `compression` option. */
export function resolveCompression(option: CompressionOption | undefined): ResolvedCompression {
  if (option === undefined || option === 'none')
    return { compressor: undefined, thresholdBytes: Infinity };
  if (
    typeof option === 'string' ||
    (typeof option === 'object' && option !== null && 'compress' in option)
  ) {
    return { compressor: resolveCompressor(option as Compressor), thresholdBytes: 1024 };
  }
  const { compressor, thresholdBytes = 1024 } = option as CompressionOptions;
  if (!(thresholdBytes >= 0))
    throw new RangeError(`thresholdBytes must be >= 0, got ${thresholdBytes}`);
  return { compressor: resolveCompressor(compressor), thresholdBytes };
}

/** The built-in compressors plus `extra`, by name. */
export function compressorTable(extra: readonly Compressor[] = []): Map<string, Compressor> {
  const table = new Map<string, Compressor>([
    ['gzip', gzip()],
    ['deflate', deflate()],
    ['br', brotli()],
  ]);
  for (const c of extra) {
    const resolved = resolveCompressor(c);
    table.set(resolved.name, resolved);
  }
  return table;
}
