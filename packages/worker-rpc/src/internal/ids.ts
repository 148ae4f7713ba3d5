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
    id.writeUInt32LE(this.nonceLo, 0);
    id.writeUInt32LE(this.nonceHi, 4);
    id.writeUInt32LE(seq % 0x1_0000_0000, 8);
    id.writeUInt32LE(Math.floor(seq / 0x1_0000_0000), 12);
    return id;
  }

  /** The sequence number of an id made here, or -1 for a foreign or malformed id. */
  seqOf(id: Uint8Array): number {
    if (id.byteLength !== ID_BYTES) return -1;
    const b = Buffer.isBuffer(id) ? id : Buffer.from(id.buffer, id.byteOffset, id.byteLength);
    if (b.readUInt32LE(0) !== this.nonceLo || b.readUInt32LE(4) !== this.nonceHi) return -1;
    return b.readUInt32LE(8) + b.readUInt32LE(12) * 0x1_0000_0000;
  }
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
