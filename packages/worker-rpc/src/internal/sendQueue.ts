/** What a send queue writes to: a zeromq.js socket (one pending `send` at a time). */
export interface Writable {
  send(frames: (Uint8Array | string)[]): Promise<void>;
}

const EMPTY = Buffer.alloc(0);

/** Most header/body pairs coalesced into one ZeroMQ message. */
export const MAX_BATCH = 128;
/**
 * Bodies of at least this many bytes are never copied into a batch: consecutive ones leave as
 * plain pairs `[...routing, '', header, body, header, body, ...]`, the body Buffers passed to
 * zeromq.js as they are (zero-copy). Copying large bodies into a fresh batch buffer costs more
 * (allocation, page faults, the copy) than the extra frames.
 */
export const LARGE_BODY_BYTES = 16 * 1024;
/** Coalescing stops once a message holds this many body bytes... */
const MAX_BATCH_BYTES = 512 * 1024;
/** ...or this many header bytes. */
const MAX_BATCH_HEADER_BYTES = 64 * 1024;
/**
 * What a batch adds to the largest single frame a peer must accept: sockets set their
 * `maxMessageSize` to `maxBodyBytes + BATCH_ALLOWANCE_BYTES`.
 */
export const BATCH_ALLOWANCE_BYTES = MAX_BATCH_BYTES + MAX_BATCH_HEADER_BYTES + 128 * 1024;

/**
 * A bounded FIFO in front of a zeromq.js socket, drained by a single sender loop: zeromq.js allows
 * only one pending `send()` per socket (a second one rejects with EBUSY), so every send of a socket
 * goes through here. `push`/`pushPair` return false when the queue is full or closed; a failed send
 * is reported to `onError` with the tags of the messages it carried.
 *
 * wrpc/1 messages (`pushPair`) queued together are coalesced: consecutive pairs with the same
 * routing envelope leave as one batch message `[...routing, '', packed headers, packed bodies]`
 * (see {@link packBatch}). The sender starts
 * one microtask after the first push (no timer, no added latency), so everything produced by the
 * same burst of work — the replies to one incoming batch, the calls made when a batch of results
 * resolved — shares a native send, and the peer a native receive.
 */
export class SendQueue<Tag = undefined> {
  private routings: (readonly Uint8Array[] | undefined)[] = [];
  private headers: (Uint8Array | undefined)[] = [];
  private bodies: (Uint8Array | undefined)[] = [];
  private raws: ((Uint8Array | string)[] | undefined)[] = [];
  private tags: (Tag | undefined)[] = [];
  private head = 0;
  private running = false;
  private closed = false;
  /** Resolved once nothing is waiting or being sent (see {@link whenIdle}). */
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly socket: Writable,
    /** Most messages waiting (not counting the ones being sent). */
    readonly limit: number,
    private readonly onError: (error: unknown, tags: readonly (Tag | undefined)[]) => void,
    /** Coalesce pairs (off for peers that only understand one message per ZeroMQ message). */
    private readonly batching = true,
  ) {}

  /** Messages waiting to be sent. */
  get size(): number {
    return this.headers.length - this.head;
  }

  /** Queues raw frames (sent as they are, never coalesced); false when full or closed. */
  push(frames: (Uint8Array | string)[], tag?: Tag): boolean {
    return this.enqueue(undefined, undefined, undefined, frames, tag);
  }

  /** Queues a wrpc/1 message `[...routing, '', header, body?]`; false when full or closed. */
  pushPair(
    routing: readonly Uint8Array[],
    header: Uint8Array,
    body: Uint8Array | undefined,
    tag?: Tag,
  ): boolean {
    return this.enqueue(routing, header, body, undefined, tag);
  }

  private enqueue(
    routing: readonly Uint8Array[] | undefined,
    header: Uint8Array | undefined,
    body: Uint8Array | undefined,
    raw: (Uint8Array | string)[] | undefined,
    tag: Tag | undefined,
  ): boolean {
    if (this.closed || this.headers.length - this.head >= this.limit) return false;
    this.routings.push(routing);
    this.headers.push(header);
    this.bodies.push(body);
    this.raws.push(raw);
    this.tags.push(tag);
    if (!this.running) {
      // Start sending after the current burst of synchronous work (one microtask later): replies
      // resolved together produce their next requests together, and they leave as one message.
      this.running = true;
      queueMicrotask(this.start);
    }
    return true;
  }

  /** Drops everything queued and refuses new items; returns the dropped tags. */
  /** Settles once nothing is waiting or being sent (at once when idle, or when closed). */
  whenIdle(): Promise<void> {
    if ((!this.running && this.size === 0) || this.closed) return Promise.resolve();
    return new Promise(resolve => this.idleWaiters.push(resolve));
  }

  close(): (Tag | undefined)[] {
    this.closed = true;
    this.wakeIdle();
    const dropped = this.tags.slice(this.head);
    this.reset();
    return dropped;
  }

  private reset(): void {
    this.routings = [];
    this.headers = [];
    this.bodies = [];
    this.raws = [];
    this.tags = [];
    this.head = 0;
  }

  /** Takes the next message (a raw one, or one or more coalesced pairs) off the queue. */
  private take(): { frames: (Uint8Array | string)[]; tags: (Tag | undefined)[] } {
    const i = this.head++;
    const raw = this.raws[i];
    const tags: (Tag | undefined)[] = [this.tags[i]];
    const routing = this.routings[i]!;
    const header = this.headers[i]!;
    const body = this.bodies[i];
    this.release(i);
    if (raw !== undefined) return { frames: raw, tags };
    if (this.batching && body !== undefined && body.byteLength >= LARGE_BODY_BYTES)
      return this.takeLarge(routing, header, body, tags);
    let headers: Uint8Array[] | undefined;
    let bodies: (Uint8Array | undefined)[] | undefined;
    let bytes = body?.byteLength ?? 0;
    let headerBytes = header.byteLength;
    while (
      this.batching &&
      this.head < this.headers.length &&
      tags.length < MAX_BATCH &&
      bytes < MAX_BATCH_BYTES &&
      headerBytes < MAX_BATCH_HEADER_BYTES
    ) {
      const j = this.head;
      const nextBody = this.bodies[j];
      if (
        this.raws[j] !== undefined ||
        (nextBody !== undefined && nextBody.byteLength >= LARGE_BODY_BYTES) ||
        !sameRouting(this.routings[j]!, routing)
      )
        break;
      if (headers === undefined) {
        headers = [header];
        bodies = [body];
      }
      headers.push(this.headers[j]!);
      bodies!.push(nextBody);
      bytes += nextBody?.byteLength ?? 0;
      headerBytes += this.headers[j]!.byteLength;
      tags.push(this.tags[j]);
      this.release(j);
      this.head++;
    }
    if (headers !== undefined) {
      const [packedHeaders, packedBodies] = packBatch(headers, bodies!);
      return {
        frames:
          routing.length === 0
            ? [EMPTY, packedHeaders, packedBodies]
            : [...routing, EMPTY, packedHeaders, packedBodies],
        tags,
      };
    }
    const frames =
      routing.length === 0
        ? body === undefined
          ? [EMPTY, header]
          : [EMPTY, header, body]
        : body === undefined
          ? [...routing, EMPTY, header]
          : [...routing, EMPTY, header, body];
    return { frames, tags };
  }

  /**
   * A message of plain pairs: the large body at the head and the large bodies queued right after
   * it for the same peer (see {@link LARGE_BODY_BYTES}); every wrpc/1 peer reads this layout.
   */
  private takeLarge(
    routing: readonly Uint8Array[],
    header: Uint8Array,
    body: Uint8Array,
    tags: (Tag | undefined)[],
  ): { frames: (Uint8Array | string)[]; tags: (Tag | undefined)[] } {
    const frames: (Uint8Array | string)[] =
      routing.length === 0 ? [EMPTY, header, body] : [...routing, EMPTY, header, body];
    let bytes = body.byteLength;
    while (this.head < this.headers.length && tags.length < MAX_BATCH && bytes < MAX_BATCH_BYTES) {
      const j = this.head;
      const next = this.bodies[j];
      if (
        this.raws[j] !== undefined ||
        next === undefined ||
        next.byteLength < LARGE_BODY_BYTES ||
        !sameRouting(this.routings[j]!, routing)
      )
        break;
      frames.push(this.headers[j]!, next);
      bytes += next.byteLength;
      tags.push(this.tags[j]);
      this.release(j);
      this.head++;
    }
    return { frames, tags };
  }

  private release(i: number): void {
    this.routings[i] = undefined;
    this.headers[i] = undefined;
    this.bodies[i] = undefined;
    this.raws[i] = undefined;
    this.tags[i] = undefined;
  }

  private readonly start = (): void => void this.drain();

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.head < this.headers.length && !this.closed) {
        const { frames, tags } = this.take();
        if (this.head >= 1024 && this.head * 2 >= this.headers.length) this.compact();
        try {
          await this.socket.send(frames);
        } catch (error) {
          this.onError(error, tags);
        }
      }
      if (this.head === this.headers.length && this.head > 0) this.reset();
    } finally {
      this.running = false;
      if (this.size === 0 || this.closed) this.wakeIdle();
    }
  }

  private wakeIdle(): void {
    if (this.idleWaiters.length === 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private compact(): void {
    const h = this.head;
    this.routings = this.routings.slice(h);
    this.headers = this.headers.slice(h);
    this.bodies = this.bodies.slice(h);
    this.raws = this.raws.slice(h);
    this.tags = this.tags.slice(h);
    this.head = 0;
  }
}

function sameRouting(a: readonly Uint8Array[], b: readonly Uint8Array[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x === y) continue;
    if (
      x.byteLength !== y.byteLength ||
      !Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(y)
    )
      return false;
  }
  return true;
}

/** First byte of a batch's headers frame (a single header starts with the protocol version, 1). */
export const BATCH_MARKER = 0xb1;
/** Most messages accepted in one batch. */
export const MAX_BATCH_ENTRIES = 1024;

/**
 * Packs several messages into the two frames of a batch: headers `[0xB1, u16 count, (u16 length,
 * header)*]` and bodies `[(u32 length, body)*]` (length 0 = no body). Two frames instead of two per
 * message: the native cost of a ZeroMQ send and receive is per frame.
 */
export function packBatch(
  headers: readonly Uint8Array[],
  bodies: readonly (Uint8Array | undefined)[],
): [Buffer, Buffer] {
  let headerBytes = 3;
  let bodyBytes = 0;
  for (let k = 0; k < headers.length; k++) {
    headerBytes += 2 + headers[k]!.byteLength;
    bodyBytes += 4 + (bodies[k]?.byteLength ?? 0);
  }
  const h = Buffer.allocUnsafe(headerBytes);
  const b = Buffer.allocUnsafe(bodyBytes);
  h[0] = BATCH_MARKER;
  h.writeUInt16LE(headers.length, 1);
  let ho = 3;
  let bo = 0;
  for (let k = 0; k < headers.length; k++) {
    const header = headers[k]!;
    h.writeUInt16LE(header.byteLength, ho);
    h.set(header, ho + 2);
    ho += 2 + header.byteLength;
    const body = bodies[k];
    const len = body?.byteLength ?? 0;
    b.writeUInt32LE(len, bo);
    if (len > 0) b.set(body!, bo + 4);
    bo += 4 + len;
  }
  return [h, b];
}

function unpackBatch(
  headers: Buffer,
  bodies: Buffer,
  headerFrames: Buffer[],
  bodyFrames: (Buffer | undefined)[],
): boolean {
  if (headers.byteLength < 3) return false;
  const count = headers.readUInt16LE(1);
  if (count === 0 || count > MAX_BATCH_ENTRIES) return false;
  const headerEnd = headers.byteLength;
  const bodyEnd = bodies.byteLength;
  let ho = 3;
  let bo = 0;
  for (let k = 0; k < count; k++) {
    if (ho + 2 > headerEnd || bo + 4 > bodyEnd) return false;
    const hl = headers[ho]! | (headers[ho + 1]! << 8);
    const bl = bodies.readUInt32LE(bo);
    ho += 2;
    bo += 4;
    if (ho + hl > headerEnd || bo + bl > bodyEnd) return false;
    headerFrames.push(headers.subarray(ho, ho + hl));
    bodyFrames.push(bl === 0 ? undefined : bodies.subarray(bo, bo + bl));
    ho += hl;
    bo += bl;
  }
  return ho === headerEnd && bo === bodyEnd;
}

/**
 * Splits the content of a wrpc/1 message (the frames after the delimiter) into its header and
 * body frames, appended to `headers` and `bodies` (same index = one message): `[h]` is one
 * bodiless message, `[h, b]` one message, `[h, b, h, b, ...]` several, and a batch (`[packed
 * headers, packed bodies]`, see {@link packBatch}) several more. A zero-length body is none.
 * Returns false for anything else (odd frame counts, malformed batches); the arrays then hold
 * nothing usable.
 */
export function readPairs(
  content: readonly Buffer[],
  headers: Buffer[],
  bodies: (Buffer | undefined)[],
  /** Index of the first content frame (the frames before it are skipped). */
  from = 0,
): boolean {
  const n = content.length - from;
  if (n === 1) {
    headers.push(content[from]!);
    bodies.push(undefined);
    return true;
  }
  if (n <= 0 || n % 2 !== 0) return false;
  const first = content[from]!;
  if (n === 2 && first.byteLength > 0 && first[0] === BATCH_MARKER)
    return unpackBatch(first, content[from + 1]!, headers, bodies);
  for (let i = from; i < content.length; i += 2) {
    const body = content[i + 1]!;
    headers.push(content[i]!);
    bodies.push(body.byteLength === 0 ? undefined : body);
  }
  return true;
}

/** {@link readPairs} as `[header, body]` tuples; undefined for malformed content. */
export function splitPairs(content: readonly Buffer[]): [Buffer, Buffer | undefined][] | undefined {
  const headers: Buffer[] = [];
  const bodies: (Buffer | undefined)[] = [];
  if (!readPairs(content, headers, bodies)) return undefined;
  return headers.map((h, i) => [h, bodies[i]]);
}
