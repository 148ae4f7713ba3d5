import { randomBytes } from 'node:crypto';
import { ID_BYTES } from '../protocol.js';

/**
 * Request ids of one connection: 8 random bytes (the connection nonce) followed by a 64-bit
 * sequence number (two little-endian uint32). Making an id costs one small allocation; mapping a
 * reply back to its call is a nonce comparison and two reads, no string.
 */
export class IdSource {
  readonly nonce: Buffer;
  private readonly nonceLo: number;
  private readonly nonceHi: number;
  private seq = 0;

  constructor(nonce: Buffer = randomBytes(8)) {
    this.nonce = nonce;
    this.nonceLo = nonce.readUInt32LE(0);
    this.nonceHi = nonce.readUInt32LE(4);
  }

  /** The next sequence number. */
  nextSeq(): number {
    return ++this.seq;
  }

  /** The 16-byte id of sequence number `seq`. */
  idOf(seq: number): Buffer {
    const id = Buffer.allocUnsafe(ID_BYTES);
    this.writeId(seq, id, 0);
    return id;
  }

  /** Writes the id of sequence number `seq` into `target` at `offset` (16 bytes). */
  writeId(seq: number, target: Uint8Array, offset: number): void {
    writeUint32(target, offset, this.nonceLo);
    writeUint32(target, offset + 4, this.nonceHi);
    writeUint32(target, offset + 8, seq % 0x1_0000_0000);
    writeUint32(target, offset + 12, Math.floor(seq / 0x1_0000_0000));
  }

  /** The sequence number of an id made here, or -1 for a foreign or malformed id. */
  seqOf(id: Uint8Array): number {
    if (id.byteLength !== ID_BYTES) return -1;
    const b = Buffer.isBuffer(id) ? id : Buffer.from(id.buffer, id.byteOffset, id.byteLength);
    if (b.readUInt32LE(0) !== this.nonceLo || b.readUInt32LE(4) !== this.nonceHi) return -1;
    return b.readUInt32LE(8) + b.readUInt32LE(12) * 0x1_0000_0000;
  }
}

function writeUint32(target: Uint8Array, offset: number, value: number): void {
  target[offset] = value & 0xff;
  target[offset + 1] = (value >>> 8) & 0xff;
  target[offset + 2] = (value >>> 16) & 0xff;
  target[offset + 3] = value >>> 24;
}

/** Formats a 16-byte id as a UUID-shaped string (toto's message id frame). */
export function idToUuid(id: Uint8Array): string {
  const h = Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Parses a UUID-shaped string back into 16 bytes; undefined when it is not one. */
export function uuidToId(text: string): Buffer | undefined {
  if (!UUID.test(text)) return undefined;
  return Buffer.from(text.replace(/-/g, ''), 'hex');
}
