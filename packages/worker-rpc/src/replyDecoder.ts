import type { Codec } from './codec.js';
import type { Compressor } from './compression.js';
import { WorkerRpcError } from './errors.js';
import type { ReplyFrame } from './transport.js';

/** What a {@link ReplyDecoder} accepts: the connection's codec and compressor tables. */
export interface ReplyDecoderOptions {
  /** The connection's own codec (used when a reply names none). */
  readonly codec: Codec;
  /** Codecs accepted in replies, by name. */
  readonly codecs: ReadonlyMap<string, Codec>;
  /** The connection's own compressor (toto's ZMQ replies are always compressed with it). */
  readonly compressor: Compressor | undefined;
  /** Compressors accepted in replies, by name. */
  readonly compressors: ReadonlyMap<string, Compressor>;
  /** Largest reply body in bytes, also after decompression. */
  readonly maxBodyBytes: number;
  /** toto's dialect. */
  readonly toto: boolean;
}

/**
 * Decodes reply bodies on the client: size limit, inflation (by the frame's encoding, or the
 * connection's compressor for toto's ZMQ replies), then the frame's codec. Returns the value, or
 * a promise when inflation is asynchronous; throws (or rejects with) a typed `WorkerRpcError`
 * (`FRAME_TOO_LARGE`, `UNSUPPORTED`, `BAD_FRAME`).
 */
export class ReplyDecoder {
  constructor(private readonly options: ReplyDecoderOptions) {}

  decode(frame: ReplyFrame): unknown {
    const { codecs, compressors, maxBodyBytes, toto } = this.options;
    let body = frame.body;
    if (body === undefined || body.byteLength === 0) return undefined;
    if (body.byteLength > maxBodyBytes)
      throw new WorkerRpcError(
        'FRAME_TOO_LARGE',
        `reply body of ${body.byteLength} bytes exceeds maxBodyBytes ${maxBodyBytes}`,
      );
    const codec = codecs.get(frame.codec || this.options.codec.name);
    if (!codec)
      throw new WorkerRpcError(
        'UNSUPPORTED',
        `reply uses unknown codec ${JSON.stringify(frame.codec)}`,
      );
    const totoModule = toto && !frame.wireEncoding; // toto's ZMQ client: every reply
    if (frame.compressed || (totoModule && this.options.compressor)) {
      const compressor = totoModule ? this.options.compressor : compressors.get(frame.encoding);
      if (!compressor)
        throw new WorkerRpcError(
          'UNSUPPORTED',
          `reply uses unknown compression ${JSON.stringify(frame.encoding)}`,
        );
      const inflated = compressor.decompress(body, maxBodyBytes);
      if (inflated instanceof Promise) return inflated.then(bytes => decodeWith(codec, bytes));
      body = inflated;
    }
    return decodeWith(codec, body);
  }
}

function decodeWith(codec: Codec, bytes: Uint8Array): unknown {
  if (bytes.byteLength === 0) return undefined;
  try {
    return codec.decode(bytes);
  } catch (error) {
    throw new WorkerRpcError(
      'BAD_FRAME',
      `cannot decode reply with ${codec.name}: ${(error as Error).message}`,
      { cause: error },
    );
  }
}
