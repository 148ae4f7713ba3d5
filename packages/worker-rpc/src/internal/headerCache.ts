import {
  CREDIT_UNKNOWN,
  FLAG_ACK,
  FLAG_COMPRESSED,
  FLAG_IDEMPOTENT,
  Kind,
  MAX_BUDGET_MS,
  encodeHeader,
  type KindValue,
} from '../protocol.js';
import type { OutgoingRequest } from '../transport.js';

const ZERO_ID = new Uint8Array(16);
const MAX_TEMPLATES = 1024;

/**
 * Encodes REQ headers fast: for calls without idempotency key or metadata, the header of a method
 * is a cached template copied and patched (flags, attempt, id, budget) instead of re-encoding
 * names. Other calls use `encodeHeader`.
 */
export class RequestHeaderEncoder {
  private readonly templates = new Map<
    string,
    { codec: string; encoding: string; template: Buffer }
  >();

  encode(request: OutgoingRequest, attempt = request.attempt): Buffer {
    let flags = 0;
    if (request.idempotent) flags |= FLAG_IDEMPOTENT;
    if (request.compressed) flags |= FLAG_COMPRESSED;
    if (request.ack) flags |= FLAG_ACK;
    const budgetMs = request.budgetMs();
    if (request.key !== '' || request.meta !== undefined) {
      return encodeHeader({
        kind: Kind.REQ,
        id: request.id,
        flags,
        attempt,
        budgetMs,
        codec: request.codec,
        encoding: request.encoding,
        method: request.method,
        key: request.key,
        meta: request.meta,
      });
    }
    let entry = this.templates.get(request.method);
    if (
      entry === undefined ||
      entry.codec !== request.codec ||
      entry.encoding !== request.encoding
    ) {
      entry = {
        codec: request.codec,
        encoding: request.encoding,
        template: encodeHeader({
          kind: Kind.REQ,
          id: ZERO_ID,
          codec: request.codec,
          encoding: request.encoding,
          method: request.method,
        }),
      };
      if (this.templates.size < MAX_TEMPLATES) this.templates.set(request.method, entry);
    }
    const template = entry.template;
    const header = Buffer.allocUnsafe(template.byteLength);
    header.set(template); // TypedArray#set: no intermediate views, unlike Buffer#copy
    header[2] = flags;
    header[3] = attempt > 255 ? 255 : attempt;
    if (request.writeId !== undefined) request.writeId(header, 4);
    else header.set(request.id, 4);
    header.writeInt32LE(budgetMs < 0 ? -1 : Math.min(MAX_BUDGET_MS, Math.ceil(budgetMs)), 20);
    return header;
  }
}

/**
 * Encodes reply headers (RES, ERR, ACK) from cached templates per kind, codec and encoding,
 * patching flags, attempt, id and credit.
 */
export class ReplyHeaderEncoder {
  private readonly templates = new Map<string, Buffer>();
  /** The last template used, by its kind, codec and encoding (replies mostly repeat them). */
  private lastKind = -1;
  private lastCodec = '';
  private lastEncoding = '';
  private lastTemplate: Buffer | undefined;

  encode(
    kind: KindValue,
    id: Uint8Array,
    attempt: number,
    codec: string,
    encoding: string,
    compressed: boolean,
    credit: number,
  ): Buffer {
    let template: Buffer | undefined;
    if (kind === this.lastKind && codec === this.lastCodec && encoding === this.lastEncoding) {
      template = this.lastTemplate!;
    } else {
      const cacheKey = `${kind}\u0000${codec}\u0000${encoding}`;
      template = this.templates.get(cacheKey);
      if (template === undefined) {
        template = encodeHeader({ kind, id: ZERO_ID, codec, encoding });
        if (this.templates.size < MAX_TEMPLATES) this.templates.set(cacheKey, template);
      }
      this.lastKind = kind;
      this.lastCodec = codec;
      this.lastEncoding = encoding;
      this.lastTemplate = template;
    }
    const header = Buffer.allocUnsafe(template.byteLength);
    header.set(template); // TypedArray#set: no intermediate views, unlike Buffer#copy
    header[2] = compressed ? FLAG_COMPRESSED : 0;
    header[3] = attempt > 255 ? 255 : attempt;
    header.set(id, 4);
    header.writeUInt32LE(
      credit < 0 ? CREDIT_UNKNOWN : Math.min(CREDIT_UNKNOWN - 1, Math.floor(credit)),
      24,
    );
    return header;
  }
}
