import { gzipSync } from 'node:zlib';
import { waitFor } from '@x/testkit';
import {
  Kind,
  MAX_HEADER_BYTES,
  brotli,
  createWorker,
  createWorkerConnection,
  decodeHeader,
  httpWorkerTransport,
  deflate,
  encodeHeader,
  gzip,
  isWorkerRpcError,
  jsonCodec,
  msgpackCodec,
  zmqWorkerTransport,
  type Compressor,
  type KindValue,
  type ReplyFrame,
  type Worker,
  type WorkerConnection,
} from '@x/worker-rpc';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Dealer } from 'zeromq';
import {
  BAD_INPUT_TIMEOUT_MS,
  BadInputTally,
  recordHeapGrowth,
  xErrorCodes,
} from '../src/badInputTally.js';
import { recordFigure } from '../src/figures.js';
import { heapAfterGc, heapGrowthMbSince } from '../src/heap.js';
import { MemoryWorkerTransport, memoryClientTransport } from '../src/memoryRpcTransports.js';
import { mutatedBytes } from '../src/mutate.js';
import { sized } from '../src/profile.js';

// Bad input for worker-rpc: wrpc/1 header frames (decodeHeader), request bodies through the
// worker's codecs and decompressors, reply bodies through the client's, and raw frames (batches
// included) on a real ZeroMQ socket. Only typed codes from the README, never a crash or a hang.

const RUNS = sized({ quick: 10_000, long: 100_000 });
const ZMQ_MESSAGES = sized({ quick: 1_000, long: 10_000 });
const MAX_BODY = 4_096;
/** Codes the worker answers bad requests with (README "Error codes"). */
const WORKER_CODES = [
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'INVALID_ARGUMENT',
  'INTERNAL',
  'FRAME_TOO_LARGE',
  'BAD_FRAME',
  'UNSUPPORTED',
  'OVERLOADED',
];
const CLIENT_CODES = [...WORKER_CODES, 'TIMEOUT', 'UNAVAILABLE', 'CANCELLED'];
const COMPRESSORS: Record<string, Compressor> = { gzip: gzip(), deflate: deflate(), br: brotli() };
const BOMB = gzipSync(Buffer.alloc(4 * 2 ** 20)); // 4 MiB of zeros in about 4 KiB

const handlers = {
  echo: (p: unknown) => p,
  math: { add: (p: { a: number; b: number }) => p.a + p.b },
  fail: () => {
    throw new Error('boom');
  },
};

const id16 = fc.uint8Array({ minLength: 16, maxLength: 16 });
const method = fc.oneof(
  { arbitrary: fc.constantFrom('echo', 'math.add', 'fail'), weight: 4 },
  fc.constantFrom('math', 'math.', '.echo', 'nope'),
  fc.constantFrom(
    '__proto__',
    'constructor',
    'echo.constructor',
    'math.__proto__.add',
    'toString',
    'math.hasOwnProperty',
    '$status',
    '$drain',
  ),
  fc.string({ maxLength: 20 }),
);
const codecName = fc.oneof(
  { arbitrary: fc.constantFrom('', 'json', 'msgpack'), weight: 6 },
  { arbitrary: fc.constantFrom('nope', 'JSON'), weight: 1 },
);
const encodingName = fc.oneof(
  { arbitrary: fc.constantFrom('', 'gzip', 'deflate', 'br'), weight: 6 },
  { arbitrary: fc.constant('zstd'), weight: 1 },
);
const params = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.record({ a: fc.integer(), b: fc.integer() }),
);

const CODECS = { json: jsonCodec(), msgpack: msgpackCodec() };
/** The codec a worker or client picks for `name` (JSON unless msgpack). */
function codecNamed(name: string) {
  return name === 'msgpack' ? CODECS.msgpack : CODECS.json;
}

/** Encodes `value` as `codec` would (JSON for unknown names), compressed with `encoding` when asked. */
function encodeBody(
  value: unknown,
  codec: string,
  encoding: string,
  compressed: boolean,
): Uint8Array {
  const bytes = codecNamed(codec).encode(value ?? null);
  const compressor = COMPRESSORS[encoding];
  return compressed && compressor ? (compressor.compress(bytes) as Uint8Array) : bytes;
}

/** A body for `codec`/`encoding`: valid, mutated, random, a decompression bomb, oversized, or none. */
function body(
  value: fc.Arbitrary<unknown>,
  codec: string,
  encoding: string,
  compressed: boolean,
): fc.Arbitrary<Uint8Array | undefined> {
  const valid = value.map(v => encodeBody(v, codec, encoding, compressed));
  return fc.oneof(
    { arbitrary: valid, weight: 3 },
    { arbitrary: mutatedBytes(valid), weight: 3 },
    { arbitrary: fc.uint8Array({ maxLength: 200 }), weight: 1 },
    { arbitrary: fc.constant(new Uint8Array(BOMB)), weight: 1 },
    { arbitrary: fc.constant(encodeBody('x'.repeat(MAX_BODY), codec, '', false)), weight: 1 },
    { arbitrary: fc.constant(undefined), weight: 1 },
  );
}

/** Decodes a worker reply body the way a client would. */
function decodeReply(
  bytes: Uint8Array | undefined,
  codec: string,
  encoding: string,
  compressed: boolean,
): unknown {
  if (!bytes || bytes.byteLength === 0) return undefined;
  const plain = compressed
    ? (COMPRESSORS[encoding]!.decompress(bytes, 16 * MAX_BODY) as Uint8Array)
    : bytes;
  return codecNamed(codec).decode(plain);
}

const validHeader = fc
  .record({
    kind: fc.integer({ min: 1, max: 9 }) as fc.Arbitrary<KindValue>,
    id: id16,
    flags: fc.integer({ min: 0, max: 7 }),
    attempt: fc.integer({ min: 0, max: 255 }),
    budgetMs: fc.integer({ min: -1, max: 100_000 }),
    credit: fc.integer({ min: 0, max: 1_000 }),
    codec: fc.constantFrom('json', 'msgpack', ''),
    encoding: fc.constantFrom('', 'gzip', 'br'),
    method: fc.constantFrom('echo', 'math.add', 'a.b.c'),
    key: fc.string({ maxLength: 10 }),
    meta: fc.option(
      fc.dictionary(fc.string({ minLength: 1, maxLength: 5 }), fc.string({ maxLength: 5 }), {
        maxKeys: 3,
      }),
      { nil: undefined },
    ),
  })
  .map(fields => new Uint8Array(encodeHeader(fields)));

describe('bad input: worker-rpc frames and codecs', { timeout: BAD_INPUT_TIMEOUT_MS }, () => {
  const memory = new MemoryWorkerTransport();
  const zmq = zmqWorkerTransport({ bind: 'tcp://127.0.0.1:0' });
  let worker: Worker;
  beforeAll(async () => {
    worker = createWorker({
      transport: [memory, zmq],
      handlers,
      maxBodyBytes: MAX_BODY,
      admin: false,
      // the dedupe window keeps results by design (bounded by `max`): small, so that the heap
      // figure shows leaks rather than the window filling up
      dedupe: { max: 1_000 },
    });
    await worker.start();
  });
  afterAll(() => worker?.close());

  it(`decodeHeader: ${RUNS} frames decode or throw BAD_FRAME / UNSUPPORTED / FRAME_TOO_LARGE`, async () => {
    const tally = new BadInputTally(
      'worker-rpc: decodeHeader',
      xErrorCodes(['BAD_FRAME', 'UNSUPPORTED', 'FRAME_TOO_LARGE']),
    );
    const frame = fc.oneof(
      { arbitrary: validHeader, weight: 1 },
      { arbitrary: mutatedBytes(validHeader), weight: 5 },
      { arbitrary: fc.uint8Array({ maxLength: 300 }), weight: 2 },
      {
        arbitrary: fc
          .integer({ min: MAX_HEADER_BYTES + 1, max: 2 * MAX_HEADER_BYTES })
          .map(n => new Uint8Array(n).fill(1)),
        weight: 1,
      },
    );
    fc.assert(
      fc.property(frame, bytes => {
        tally.run(() => decodeHeader(bytes));
      }),
      { numRuns: RUNS },
    );
    tally.record(RUNS);
    expect(tally.cases).toBeGreaterThanOrEqual(RUNS);
    for (const outcome of ['ok', 'BAD_FRAME', 'UNSUPPORTED', 'FRAME_TOO_LARGE'])
      expect(tally.outcomes.get(outcome)).toBeGreaterThan(0);
    expect(await tally.slowestReplayedMs()).toBeLessThan(100);
  });

  it(`worker: ${RUNS} requests with bad methods, codecs, compression and bodies get a result or a typed ERR`, async () => {
    const tally = new BadInputTally('worker-rpc: worker request decoding', error => {
      const code = (error as { code?: unknown }).code;
      return typeof code === 'string' && WORKER_CODES.includes(code) ? code : undefined;
    });
    const request = fc
      .record({ codec: codecName, encoding: encodingName, compressed: fc.boolean() })
      .chain(({ codec, encoding, compressed }) =>
        fc.record({
          id: id16,
          method,
          attempt: fc.integer({ min: 0, max: 255 }),
          budgetMs: fc.oneof(
            fc.constant(-1),
            fc.integer({ min: 0, max: 5_000 }),
            fc.integer({ min: -100, max: 0 }),
          ),
          idempotent: fc.boolean(),
          key: fc.oneof(fc.constant(''), fc.string({ maxLength: 8 })),
          meta: fc.option(
            fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 3 }),
            { nil: undefined },
          ),
          ack: fc.boolean(),
          codec: fc.constant(codec),
          encoding: fc.constant(encoding),
          compressed: fc.constant(compressed),
          body: body(params, codec, encoding, compressed),
          toto: fc.constant(false),
          wrapErrors: fc.boolean(),
        }),
      );
    const heapBefore = await heapAfterGc();
    await fc.assert(
      fc.asyncProperty(request, async fields => {
        const start = performance.now();
        const reply = await memory.request(fields);
        const decoded = decodeReply(
          reply.body,
          reply.info.codec,
          reply.info.encoding,
          reply.info.compressed,
        );
        if (reply.kind === Kind.RES) {
          tally.count('ok', performance.now() - start);
          return;
        }
        expect(reply.kind).toBe(Kind.ERR);
        const wire = (fields.wrapErrors ? (decoded as { error?: unknown })?.error : decoded) as {
          code?: unknown;
        };
        tally.count(tally.codeOf(wire), performance.now() - start);
      }),
      { numRuns: RUNS, plugins: [fc.timeout(2_000)] },
    );
    const growthMb = await heapGrowthMbSince(heapBefore);
    tally.record(RUNS);
    recordHeapGrowth('worker-rpc: worker', growthMb);
    expect(tally.cases).toBeGreaterThanOrEqual(RUNS);
    for (const outcome of [
      'ok',
      'NOT_FOUND',
      'INVALID_ARGUMENT',
      'UNSUPPORTED',
      'FRAME_TOO_LARGE',
      'BAD_FRAME',
    ])
      expect(tally.outcomes.get(outcome), outcome).toBeGreaterThan(0);
    expect(tally.slowestMs).toBeLessThan(1_000);
    expect(growthMb).toBeLessThan(20);
    expect(worker.status().state).toBe('running');
  });

  it(`client: ${RUNS} replies with bad kinds, codecs, compression and bodies resolve or reject with a typed error`, async () => {
    let next: readonly ReplyFrame[] = [];
    const conn: WorkerConnection = createWorkerConnection({
      addresses: 'memory://worker',
      transport: memoryClientTransport(() => next),
      maxBodyBytes: MAX_BODY,
      timeoutMs: 1_000,
    });
    const wireError = fc.record(
      {
        code: fc.oneof(
          fc.constantFrom('NOT_FOUND', 'INTERNAL', 'APP_7', 'x y', ''),
          fc.string({ maxLength: 70 }),
        ),
        message: fc.oneof(fc.string({ maxLength: 20 }), fc.constant(5)),
        retryable: fc.boolean(),
        appCode: fc.integer(),
        retryAfterMs: fc.integer({ min: -10, max: 10_000 }),
        details: fc.jsonValue({ maxDepth: 1 }),
      },
      { requiredKeys: [] },
    );
    const frame: fc.Arbitrary<ReplyFrame> = fc
      .record({
        kind: fc.constantFrom(Kind.RES, Kind.ERR) as fc.Arbitrary<KindValue>,
        codec: codecName,
        encoding: encodingName,
        compressed: fc.boolean(),
        wrapped: fc.boolean(),
      })
      .chain(f =>
        fc.record({
          kind: fc.constant(f.kind),
          codec: fc.constant(f.codec),
          encoding: fc.constant(f.encoding),
          compressed: fc.constant(f.compressed),
          wrapped: fc.constant(f.wrapped),
          credit: fc.constantFrom(-1, 0, 1, 64, 2 ** 32 - 1),
          body: body(
            f.kind === Kind.ERR
              ? f.wrapped
                ? wireError.map(error => ({ error }))
                : wireError
              : params,
            f.codec,
            f.encoding,
            f.compressed,
          ),
        }),
      );
    // an ACK or an unknown kind before the answer, sometimes
    const prefix = fc.oneof(
      fc.constant([] as ReplyFrame[]),
      fc.integer({ min: 0, max: 12 }).map(kind => [
        {
          kind: kind as KindValue,
          body: undefined,
          codec: 'json',
          encoding: '',
          compressed: false,
          credit: -1,
        },
      ]),
    );
    const tally = new BadInputTally('worker-rpc: client reply decoding', error => {
      if (!isWorkerRpcError(error)) return undefined;
      if (CLIENT_CODES.includes(error.code)) return error.code;
      return error.remote ? 'remote application code' : undefined;
    });
    try {
      await fc.assert(
        fc.asyncProperty(prefix, frame, method, async (before, answer, m) => {
          next = [...before, answer];
          await tally.runAsync(() =>
            conn.invoke(m || 'echo', { a: 1, b: 2 }, { timeoutMs: 1_000 }),
          );
        }),
        { numRuns: RUNS, plugins: [fc.timeout(2_000)] },
      );
    } finally {
      await conn.close();
    }
    tally.record(RUNS);
    expect(tally.cases).toBeGreaterThanOrEqual(RUNS);
    for (const outcome of ['ok', 'BAD_FRAME', 'UNSUPPORTED', 'FRAME_TOO_LARGE', 'INTERNAL'])
      expect(tally.outcomes.get(outcome), outcome).toBeGreaterThan(0);
    expect(tally.outcomes.get('TIMEOUT') ?? 0).toBeLessThan(RUNS / 100); // every reply settles its call
    expect(tally.slowestMs).toBeLessThan(1_500);
  });

  it(`real ZeroMQ socket: ${ZMQ_MESSAGES} raw messages (pairs, batches, mutated) never crash the worker; every reply is a typed ERR or a result`, async () => {
    const address = worker.addresses.find(a => a.startsWith('tcp://'))!;
    const dealer = new Dealer({
      linger: 0,
      sendHighWaterMark: 100_000,
      receiveHighWaterMark: 100_000,
    });
    dealer.connect(address);
    const replies: Buffer[][] = [];
    const receiving = (async () => {
      for await (const frames of dealer) replies.push(frames);
    })().catch(() => {});
    const request = fc
      .record({
        id: id16,
        method,
        codec: fc.constantFrom('json', 'msgpack', 'nope'),
        value: params,
      })
      .map(
        r =>
          [
            encodeHeader({
              kind: Kind.REQ,
              id: r.id,
              codec: r.codec,
              method: r.method,
              budgetMs: 2_000,
            }),
            Buffer.from(encodeBody(r.value, r.codec, '', false)),
          ] as const,
      );
    const batch = fc.array(request, { minLength: 1, maxLength: 4 }).map(pairs => {
      const headers = pairs.map(([h]) => h);
      const head = Buffer.alloc(3);
      head[0] = 0xb1;
      head.writeUInt16LE(headers.length, 1);
      const packedHeaders = Buffer.concat([
        head,
        ...headers.map(h => Buffer.concat([u16(h.byteLength), h])),
      ]);
      const packedBodies = Buffer.concat(
        pairs.map(([, b]) => Buffer.concat([u32(b.byteLength), b])),
      );
      return [packedHeaders, packedBodies];
    });
    const message = fc.oneof(
      request.map(pair => [...pair]),
      batch,
      fc
        .tuple(
          mutatedBytes(batch.map(([h]) => new Uint8Array(h!))),
          batch.map(([, b]) => b!),
        )
        .map(([h, b]) => [Buffer.from(h), b]),
      fc
        .tuple(
          batch.map(([h]) => h!),
          mutatedBytes(batch.map(([, b]) => new Uint8Array(b!))),
        )
        .map(([h, b]) => [h, Buffer.from(b)]),
      fc
        .array(mutatedBytes(request.map(([h]) => new Uint8Array(h))), {
          minLength: 1,
          maxLength: 3,
        })
        .map(frames => frames.map(f => Buffer.from(f))),
      fc
        .array(fc.uint8Array({ maxLength: 80 }), { maxLength: 5 })
        .map(frames => frames.map(f => Buffer.from(f))),
    );
    const before = worker.status();
    const seed = Math.floor(Math.random() * 2 ** 31); // real sockets: sampled, not shrunk
    const messages = fc.sample(message, { numRuns: ZMQ_MESSAGES, seed });
    try {
      for (const frames of messages) await dealer.send([Buffer.alloc(0), ...frames]);
      // a well-formed call still works after the storm
      const conn = createWorkerConnection({ addresses: address, timeoutMs: 5_000 });
      try {
        expect(await conn.invoke('math.add', { a: 20, b: 22 })).toBe(42);
      } finally {
        await conn.close();
      }
      const handled = () => {
        const s = worker.status();
        return (
          s.badFrames +
          s.failed +
          s.completed +
          s.rejected -
          (before.badFrames + before.failed + before.completed + before.rejected)
        );
      };
      await waitFor(() => handled() >= ZMQ_MESSAGES / 2, { timeoutMs: 10_000 });
    } finally {
      dealer.close();
      await receiving;
    }
    const tally = new BadInputTally('worker-rpc: replies to raw ZeroMQ messages', () => undefined);
    for (const reply of replies) {
      const delimiter = reply.findIndex(f => f.byteLength === 0);
      for (const [headerFrame, bodyFrame] of replyPairs(reply.slice(delimiter + 1))) {
        const header = decodeHeader(headerFrame);
        if (header.kind === Kind.ERR) {
          const wire = decodeReply(bodyFrame, header.codec, header.encoding, false) as {
            code: string;
          };
          expect(WORKER_CODES, `seed ${seed}`).toContain(wire.code);
          tally.count(wire.code);
        } else {
          expect([Kind.RES, Kind.PONG], `seed ${seed}`).toContain(header.kind);
          tally.count(header.kind === Kind.RES ? 'ok' : 'PONG');
        }
      }
    }
    tally.record();
    recordFigure({
      section: 'bad input',
      name: 'worker-rpc: raw ZeroMQ messages sent',
      value: ZMQ_MESSAGES,
    });
    expect(worker.status().state).toBe('running');
    expect(worker.status().badFrames).toBeGreaterThan(before.badFrames);
  });
});

/** Header/body pairs of a reply: plain pairs, or a batch (README "Batches"). */
function replyPairs(content: readonly Buffer[]): [Buffer, Buffer | undefined][] {
  if (content.length === 2 && content[0]![0] === 0xb1) {
    const [headers, bodies] = content as [Buffer, Buffer];
    const pairs: [Buffer, Buffer | undefined][] = [];
    let ho = 3;
    let bo = 0;
    for (let k = 0; k < headers.readUInt16LE(1); k++) {
      const hl = headers.readUInt16LE(ho);
      const bl = bodies.readUInt32LE(bo);
      pairs.push([
        headers.subarray(ho + 2, ho + 2 + hl),
        bl ? bodies.subarray(bo + 4, bo + 4 + bl) : undefined,
      ]);
      ho += 2 + hl;
      bo += 4 + bl;
    }
    return pairs;
  }
  const pairs: [Buffer, Buffer | undefined][] = [];
  for (let i = 0; i < content.length; i += 2)
    pairs.push([content[i]!, content[i + 1]?.byteLength ? content[i + 1] : undefined]);
  return pairs;
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

describe('bad input: worker-rpc addresses and durations (issue 12)', () => {
  /** The synchronous error of `make` (or undefined), and how long it took. */
  function attempt(make: () => { close(): Promise<unknown> }) {
    const started = performance.now();
    try {
      void make().close();
    } catch (error) {
      return { error, ms: performance.now() - started };
    }
    return { error: undefined, ms: performance.now() - started };
  }

  it('property: a connection address is accepted (valid shape) or refused at once with INVALID_ARGUMENT naming it, never a late TIMEOUT', () => {
    const address = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc
        .tuple(
          fc.constantFrom('tcp://', 'ipc://', 'inproc://', 'http://', 'https://', 'foo://', ''),
          fc.oneof(fc.domain(), fc.ipV4(), fc.constantFrom('', '*', '[::1]', 'localhost')),
          fc.constantFrom('', ':'),
          fc.oneof(fc.nat(70_000).map(String), fc.string({ maxLength: 5 })),
        )
        .map(parts => parts.join('')),
    );
    fc.assert(
      fc.property(address, a => {
        const { error, ms } = attempt(() =>
          createWorkerConnection({ addresses: [a], timeoutMs: 50 }),
        );
        expect(ms).toBeLessThan(1_000);
        if (error === undefined && a.trim() === '') return; // an empty entry is dropped
        if (error === undefined) {
          expect(a.trim()).toMatch(/^(tcp:\/\/.+:\d+|ipc:\/\/.+|inproc:\/\/.+|https?:\/\/.+)$/i);
          return;
        }
        expect(isWorkerRpcError(error) && error.code).toBe('INVALID_ARGUMENT');
        expect((error as Error).message).toContain(`received ${JSON.stringify(a.trim())}`);
      }),
      { numRuns: 500 },
    );
  });

  it('the malformed addresses of the issue and bad bind options fail at once; timeoutMs "300" and NaN are typed', () => {
    for (const a of [
      'tcp://127.0.0.1',
      'foo://x:1',
      'tcp://127.0.0.1:notaport',
      'localhost:5555',
    ]) {
      const { error } = attempt(() => createWorkerConnection({ addresses: a }));
      expect(isWorkerRpcError(error) && error.code, a).toBe('INVALID_ARGUMENT');
      expect(
        isWorkerRpcError(
          attempt(() => ({ close: async () => {}, t: zmqWorkerTransport({ bind: a }) })).error,
        ),
        a,
      ).toBe(true);
    }
    expect(
      isWorkerRpcError(
        attempt(() => ({ close: async () => {}, t: httpWorkerTransport({ port: -1 }) })).error,
      ),
    ).toBe(true);
    for (const timeoutMs of ['300', Number.NaN]) {
      const { error } = attempt(() => createWorkerConnection({ timeoutMs: timeoutMs as never }));
      expect(isWorkerRpcError(error) && error.code).toBe('INVALID_ARGUMENT');
      expect((error as Error).message).toMatch(/^timeoutMs: expected a number of ms > 0/);
    }
  });
});
