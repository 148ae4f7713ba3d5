import type { Logger } from '@x/resilience';
import { codecTable, resolveCodec, type Codec } from '../codec.js';
import {
  compressorTable,
  resolveCompression,
  type CompressionOption,
  type Compressor,
} from '../compression.js';
import {
  WorkerRpcError,
  isWorkerRpcError,
  toTotoError,
  toWireError,
  type WireError,
} from '../errors.js';
import { Kind, type KindValue } from '../protocol.js';
import type { IncomingRequest } from '../workerTransport.js';
import type { ExecutionOutcome } from './execution.js';

/** Options of {@link WorkerCodecs} (the worker's own, see `WorkerOptions`). */
export interface WorkerCodecsOptions {
  readonly codec?: Codec | 'json' | 'msgpack';
  readonly codecs?: readonly Codec[];
  readonly compression?: CompressionOption;
  readonly compressors?: readonly Compressor[];
  readonly maxBodyBytes: number;
  readonly debug: boolean;
  readonly logger: Logger;
}

/** A request's method and decoded params. */
export interface DecodedRequest {
  readonly method: string;
  readonly params: unknown;
}

/**
 * The worker side of the wire body: decodes (and inflates) request params in both dialects
 * (wrpc/1 `params`, toto's `{ method, parameters }`) and encodes (and compresses) replies and
 * acknowledgements in the dialect of the request. Holds the codec and compressor tables.
 */
export class WorkerCodecs {
  private readonly defaultCodec: Codec;
  private readonly codecs: Map<string, Codec>;
  private readonly compressors: Map<string, Compressor>;
  private readonly totoCompressor: Compressor | undefined;
  private readonly thresholdBytes: number;
  private readonly maxBodyBytes: number;
  private readonly debug: boolean;
  private readonly logger: Logger;

  constructor(options: WorkerCodecsOptions) {
    this.defaultCodec = resolveCodec(options.codec);
    this.codecs = codecTable([...(options.codecs ?? []), this.defaultCodec]);
    const compression = resolveCompression(options.compression);
    this.totoCompressor = compression.compressor;
    this.thresholdBytes = options.compression === undefined ? 1024 : compression.thresholdBytes;
    this.compressors = compressorTable([
      ...(options.compressors ?? []),
      ...(compression.compressor ? [compression.compressor] : []),
    ]);
    this.maxBodyBytes = options.maxBodyBytes;
    this.debug = options.debug;
    this.logger = options.logger;
  }

  /** Decodes `{ params }` (or toto's `{ method, parameters }`), maybe asynchronously; errors are returned, not thrown. */
  decodeParams(
    request: IncomingRequest,
  ): DecodedRequest | WorkerRpcError | Promise<DecodedRequest> {
    const codec = request.codec === '' ? this.defaultCodec : this.codecs.get(request.codec);
    if (!codec)
      return new WorkerRpcError('UNSUPPORTED', `unknown codec ${JSON.stringify(request.codec)}`);
    let body = request.body;
    const compressor = request.toto
      ? this.totoCompressor
      : request.compressed
        ? this.compressors.get(request.encoding)
        : undefined;
    if (request.compressed && !request.toto && !compressor)
      return new WorkerRpcError(
        'UNSUPPORTED',
        `unknown compression ${JSON.stringify(request.encoding)}`,
      );
    if (compressor && body !== undefined && body.byteLength > 0) {
      let inflated: Uint8Array | Promise<Uint8Array>;
      try {
        inflated = compressor.decompress(body, this.maxBodyBytes);
      } catch (error) {
        return isWorkerRpcError(error)
          ? error
          : new WorkerRpcError('BAD_FRAME', `cannot decompress body: ${(error as Error).message}`, {
              cause: error,
            });
      }
      if (inflated instanceof Promise) {
        return inflated.then(
          bytes => {
            const r = decodeBody(request, codec, bytes);
            if (r instanceof WorkerRpcError) throw r;
            return r;
          },
          (error: unknown) =>
            Promise.reject(
              isWorkerRpcError(error)
                ? error
                : new WorkerRpcError('BAD_FRAME', 'cannot decompress body', { cause: error }),
            ),
        );
      }
      body = inflated;
    }
    return decodeBody(request, codec, body);
  }

  /** Sends the early acknowledgement of `request`. */
  ack(request: IncomingRequest, credit: number): void {
    if (request.totoHttp) {
      // toto's HTTPWorkerConnection runs loads(response.body) on every answer: loads(b'') raises,
      // so the ACK of an @asynchronous method carries the codec's `null` (Python's None)
      const codec = this.codecFor(request);
      request.respond(Kind.ACK, codec.encode(null), {
        codec: codec.name,
        encoding: '',
        compressed: false,
        credit,
      });
      return;
    }
    request.respond(Kind.ACK, undefined, {
      codec: request.codec,
      encoding: '',
      compressed: false,
      credit,
    });
  }

  /** Replies `error` to `request`. Never throws. */
  replyError(request: IncomingRequest, error: unknown, credit: number): void {
    this.reply(
      request,
      { ok: false, value: undefined, error: toWireError(error, this.debug), cause: error },
      credit,
    );
  }

  /** Encodes and sends an outcome in the request's protocol flavour. Never throws. */
  reply(request: IncomingRequest, outcome: ExecutionOutcome, credit: number): void {
    try {
      const codec = this.codecFor(request);
      let body: Uint8Array | undefined;
      let kind: KindValue = Kind.RES;
      let code: string | undefined;
      let retryAfterMs: number | undefined;
      if (outcome.ok) {
        try {
          body = outcome.value === undefined ? undefined : codec.encode(outcome.value);
        } catch (error) {
          const e = new WorkerRpcError(
            'INTERNAL',
            `cannot encode result with ${codec.name}: ${(error as Error).message}`,
          );
          return this.reply(
            request,
            { ok: false, value: undefined, error: toWireError(e), cause: e },
            credit,
          );
        }
      } else {
        const wire = outcome.error!;
        code = wire.code;
        retryAfterMs = wire.retryAfterMs;
        if (request.toto) {
          body = codec.encode({ error: toTotoError(wireAsError(wire)) });
          kind = request.wrapErrors ? Kind.ERR : Kind.RES;
        } else {
          kind = Kind.ERR;
          body = codec.encode(request.wrapErrors ? { error: wire } : wire);
        }
      }
      let compressed = false;
      let encoding = '';
      if (body !== undefined && body.byteLength > 0) {
        // toto over HTTP: toto's HTTPWorkerConnection never decompresses replies
        const compressor = request.toto
          ? request.totoHttp
            ? undefined
            : this.totoCompressor
          : request.encoding !== '' && body.byteLength >= this.thresholdBytes
            ? this.compressors.get(request.encoding)
            : undefined;
        if (compressor) {
          const packed = compressor.compress(body);
          if (packed instanceof Promise) {
            packed.then(
              bytes =>
                request.respond(kind, bytes, {
                  codec: codec.name,
                  encoding: compressor.name,
                  compressed: true,
                  credit,
                  ...(code ? { code } : {}),
                  ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
                }),
              (error: unknown) => this.logger.warn({ err: error }, 'reply compression failed'),
            );
            return;
          }
          body = packed;
          compressed = true;
          encoding = compressor.name;
        }
      }
      request.respond(
        kind,
        body,
        code === undefined && retryAfterMs === undefined
          ? { codec: codec.name, encoding, compressed, credit }
          : {
              codec: codec.name,
              encoding,
              compressed,
              credit,
              ...(code ? { code } : {}),
              ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
            },
      );
    } catch (error) {
      this.logger.error({ err: error }, 'worker failed to send a reply');
    }
  }

  private codecFor(request: IncomingRequest): Codec {
    return (
      (request.codec === '' ? this.defaultCodec : this.codecs.get(request.codec)) ??
      this.defaultCodec
    );
  }
}

function decodeBody(
  request: IncomingRequest,
  codec: Codec,
  bytes: Uint8Array | undefined,
): DecodedRequest | WorkerRpcError {
  let value: unknown;
  try {
    value = bytes === undefined || bytes.byteLength === 0 ? undefined : codec.decode(bytes);
  } catch (error) {
    return new WorkerRpcError(
      'INVALID_ARGUMENT',
      `cannot decode params with ${codec.name}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  if (!request.toto) return { method: request.method, params: value };
  if (
    typeof value !== 'object' ||
    value === null ||
    typeof (value as { method?: unknown }).method !== 'string'
  ) {
    return new WorkerRpcError(
      'INVALID_ARGUMENT',
      'toto request body must be { method, parameters }',
    );
  }
  return {
    method: (value as { method: string }).method,
    params: (value as { parameters?: unknown }).parameters,
  };
}

function wireAsError(wire: WireError): WorkerRpcError {
  return new WorkerRpcError(wire.code, wire.message, {
    ...(wire.appCode !== undefined ? { appCode: wire.appCode } : {}),
  });
}
