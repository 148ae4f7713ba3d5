import { setTimeout as sleepFor } from 'node:timers/promises';
import fc from 'fast-check';
import { waitFor } from '@x/testkit';
import { request } from 'undici';
import { Dealer } from 'zeromq';
import { afterEach, describe, expect, test } from 'vitest';
import { jsonCodec, msgpackCodec } from './codec.js';
import { gzip } from './compression.js';
import { isWorkerRpcError, type WorkerRpcError } from './errors.js';
import { FLAG_COMPRESSED, Kind, decodeHeader, encodeHeader } from './protocol.js';
import { splitPairs } from './internal/sendQueue.js';
import { createBroker } from './broker.js';
import { startHttpWorker, startZmqWorker } from './test/helpers.js';
import { createWorker } from './worker.js';
import { resolveHandler } from './resolveHandler.js';
import { createWorkerConnection } from './workerConnection.js';
import { zmqWorkerTransport } from './zmqWorkerTransport.js';

const RUNS = Number(process.env.FC_RUNS ?? 1000);
const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});
async function rejection(promise: Promise<unknown>): Promise<WorkerRpcError> {
  try {
    await promise;
  } catch (error) {
    if (isWorkerRpcError(error)) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

const KNOWN_CODES = [
  'INTERNAL',
  'BAD_FRAME',
  'UNSUPPORTED',
  'FRAME_TOO_LARGE',
  'INVALID_ARGUMENT',
  'NOT_FOUND',
  'DEADLINE_EXCEEDED',
];

/** A raw DEALER that collects every reply. */
function rawDealer(address: string) {
  const dealer = new Dealer({
    linger: 0,
    sendHighWaterMark: 100_000,
    receiveHighWaterMark: 100_000,
  });
  dealer.connect(address);
  const replies: Buffer[][] = [];
  void (async () => {
    for await (const frames of dealer) replies.push(frames);
  })().catch(() => {});
  cleanup.push(() => dealer.close());
  return { dealer, replies };
}

function id(n: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt32LE(n, 12);
  return b;
}

const handlers = {
  math: { add: (p: { a: number; b: number }) => p.a + p.b },
  echo: (p: unknown) => p,
};

describe('worker: bad input never crashes it and gets typed errors', () => {
  test('property: random frames over a real socket; every reply is a well-formed typed ERR', async () => {
    const worker = await startZmqWorker({ handlers, maxBodyBytes: 4_096 });
    cleanup.push(() => worker.close());
    const { dealer, replies } = rawDealer(worker.address);
    const frameArb = fc.oneof(
      fc.uint8Array({ maxLength: 80 }),
      // valid-looking headers with random kinds, codecs, versions
      fc
        .record({
          kind: fc.integer({ min: 0, max: 12 }),
          version: fc.constantFrom(1, 1, 1, 2),
          codec: fc.constantFrom('json', 'msgpack', 'nope', ''),
          cut: fc.nat(60),
        })
        .map(({ kind, version, codec, cut }) => {
          const h = encodeHeader({
            kind: Kind.REQ,
            id: id(7),
            codec,
            method: 'math.add',
            budgetMs: 1_000,
          });
          h[0] = version;
          h[1] = kind;
          return cut > 50 ? h : h.subarray(0, Math.max(0, h.byteLength - cut));
        }),
    );
    let sent = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.boolean(),
        fc.array(frameArb, { maxLength: 5 }),
        async (delimiter, frames) => {
          await dealer.send(
            delimiter ? [Buffer.alloc(0), ...frames] : frames.length ? frames : [Buffer.alloc(1)],
          );
          sent++;
        },
      ),
      { numRuns: RUNS },
    );
    // a valid call still works after the storm
    const conn = createWorkerConnection({ addresses: worker.address });
    cleanup.push(() => conn.close());
    expect(await conn.invoke('math.add', { a: 20, b: 22 })).toBe(42);
    await waitFor(
      () =>
        worker.status().badFrames +
          worker.status().failed +
          worker.status().completed +
          worker.status().rejected >
        sent / 2,
    );
    for (const reply of replies) {
      // replies echo whatever routing frames preceded the delimiter, and may carry several pairs
      const d = reply.findIndex(f => f.byteLength === 0);
      expect(d).toBeGreaterThanOrEqual(0);
      const pairs = splitPairs(reply.slice(d + 1));
      expect(pairs).toBeDefined();
      for (const [headerFrame, body] of pairs!) {
        const header = decodeHeader(headerFrame);
        if (header.kind === Kind.ERR) {
          const codec = header.codec === 'msgpack' ? msgpackCodec() : jsonCodec();
          expect(KNOWN_CODES).toContain((codec.decode(body!) as { code: string }).code);
        } else {
          expect([Kind.RES, Kind.PONG]).toContain(header.kind);
        }
      }
    }
    expect(worker.status().state).toBe('running');
    expect(worker.status().badFrames).toBeGreaterThan(0);
  });

  test('specific bad requests: unknown codec, unknown kind, bad body, oversized body, bad compression', async () => {
    const worker = await startZmqWorker({ handlers, maxBodyBytes: 1_000 });
    cleanup.push(() => worker.close());
    const { dealer, replies } = rawDealer(worker.address);
    const cases: [string, Buffer[]][] = [
      [
        'UNSUPPORTED',
        [
          encodeHeader({ kind: Kind.REQ, id: id(1), codec: 'pickle', method: 'echo' }),
          Buffer.from('x'),
        ],
      ],
      [
        'UNSUPPORTED',
        (() => {
          const h = encodeHeader({ kind: Kind.REQ, id: id(2), codec: 'json', method: 'echo' });
          h[1] = 99;
          return [h];
        })(),
      ],
      [
        'INVALID_ARGUMENT',
        [
          encodeHeader({ kind: Kind.REQ, id: id(3), codec: 'json', method: 'echo' }),
          Buffer.from('{not json'),
        ],
      ],
      [
        'FRAME_TOO_LARGE',
        [
          encodeHeader({ kind: Kind.REQ, id: id(4), codec: 'json', method: 'echo' }),
          Buffer.from(JSON.stringify('x'.repeat(2_000))),
        ],
      ],
      [
        'BAD_FRAME',
        [
          encodeHeader({
            kind: Kind.REQ,
            id: id(5),
            codec: 'json',
            encoding: 'gzip',
            flags: FLAG_COMPRESSED,
            method: 'echo',
          }),
          Buffer.from('not gzip at all'),
        ],
      ],
      [
        'FRAME_TOO_LARGE',
        [
          encodeHeader({
            kind: Kind.REQ,
            id: id(6),
            codec: 'json',
            encoding: 'gzip',
            flags: FLAG_COMPRESSED,
            method: 'echo',
          }),
          gzip().compress(Buffer.from(JSON.stringify('0'.repeat(100_000)))) as Buffer,
        ],
      ],
      [
        'UNSUPPORTED',
        [
          encodeHeader({
            kind: Kind.REQ,
            id: id(7),
            codec: 'json',
            encoding: 'zstd',
            flags: FLAG_COMPRESSED,
            method: 'echo',
          }),
          Buffer.from('x'),
        ],
      ],
      [
        'DEADLINE_EXCEEDED',
        [
          encodeHeader({ kind: Kind.REQ, id: id(8), codec: 'json', method: 'echo', budgetMs: 0 }),
          Buffer.from('1'),
        ],
      ],
      [
        'BAD_FRAME',
        [
          encodeHeader({ kind: Kind.REQ, id: id(9), codec: 'json', method: 'echo' }),
          Buffer.from('1'),
          Buffer.from('odd'),
        ],
      ],
    ];
    for (const [, frames] of cases) await dealer.send([Buffer.alloc(0), ...frames]);
    const codes = new Map<number, string>();
    await waitFor(() => {
      codes.clear();
      for (const reply of replies)
        for (const [h, body] of splitPairs(reply.slice(1))!)
          codes.set(decodeHeader(h).id[12]!, JSON.parse(body!.toString()).code);
      return codes.size === cases.length;
    });
    cases.forEach(([code], i) => expect(codes.get(i + 1), `case ${i + 1}`).toBe(code));
  });

  test('a frame larger than the socket limit only drops that peer; batches of small bodies still fit', async () => {
    const worker = await startZmqWorker({ handlers, maxBodyBytes: 1_000 });
    cleanup.push(() => worker.close());
    const { dealer, replies } = rawDealer(worker.address);
    await dealer.send([
      Buffer.alloc(0),
      encodeHeader({ kind: Kind.REQ, id: id(1), codec: 'json', method: 'echo' }),
      Buffer.alloc(3_000_000, 0x31),
    ]);
    const conn = createWorkerConnection({ addresses: worker.address, maxBodyBytes: 1_000 });
    cleanup.push(() => conn.close());
    expect(await conn.invoke('echo', 'still here')).toBe('still here');
    const bodies = Array.from({ length: 300 }, (_, i) => `${i}:${'b'.repeat(900)}`);
    expect(await Promise.all(bodies.map(b => conn.invoke('echo', b)))).toEqual(bodies);
    expect(replies).toHaveLength(0);
  });

  test('property: random HTTP bodies and headers get well-formed answers', async () => {
    const worker = await startHttpWorker({ handlers, maxBodyBytes: 2_048 });
    cleanup.push(() => worker.close());
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 3_000 }),
        fc.constantFrom('application/json', 'application/msgpack', 'text/plain', 'x/y'),
        fc.constantFrom(undefined, 'gzip', 'br', 'zstd', 'identity'),
        fc.constantFrom('math.add', 'echo', '__proto__', 'constructor.name', '%E0%A4%A', ''),
        async (body, type, encoding, method) => {
          const res = await request(`${worker.address}/rpc/${method}`, {
            method: 'POST',
            body,
            headers: {
              'content-type': type,
              ...(encoding ? { 'content-encoding': encoding } : {}),
            },
          });
          const bytes = Buffer.from(await res.body.arrayBuffer());
          if (res.statusCode !== 200) {
            expect(res.statusCode).toBeGreaterThanOrEqual(400);
            // errors come back in the request's codec (JSON when the worker cannot tell)
            const codec = res.headers['x-rpc-codec'] === 'msgpack' ? msgpackCodec() : jsonCodec();
            const parsed = codec.decode(bytes) as { error: { code: string } };
            expect(typeof parsed.error.code).toBe('string');
          }
        },
      ),
      { numRuns: Math.min(RUNS, 500) },
    );
    const conn = createWorkerConnection({ addresses: worker.address });
    cleanup.push(() => conn.close());
    expect(await conn.invoke('math.add', { a: 1, b: 1 })).toBe(2);
  });

  test('property: random frames on both broker sockets never stop it routing', async () => {
    const broker = await createBroker({
      frontend: 'tcp://127.0.0.1:0',
      backend: 'tcp://127.0.0.1:0',
    }).start();
    cleanup.push(() => broker.close());
    const worker = createWorker({
      handlers,
      transport: zmqWorkerTransport({ connect: broker.backendAddresses[0]! }),
    });
    await worker.start();
    cleanup.push(() => worker.close());
    const front = rawDealer(broker.frontendAddresses[0]!);
    const back = rawDealer(broker.backendAddresses[0]!);
    await fc.assert(
      fc.asyncProperty(
        fc.boolean(),
        fc.array(fc.uint8Array({ maxLength: 60 }), { maxLength: 4 }),
        async (toFront, frames) => {
          await (toFront ? front : back).dealer.send([Buffer.alloc(0), ...frames]);
        },
      ),
      { numRuns: RUNS },
    );
    const conn = createWorkerConnection({ addresses: broker.frontendAddresses[0]! });
    cleanup.push(() => conn.close());
    expect(await conn.invoke('math.add', { a: 2, b: 2 })).toBe(4);
    expect(broker.status().badFrames).toBeGreaterThan(0);
  });
});

describe('worker: handlers, admin, dedupe', () => {
  test('resolveHandler walks own data properties only', () => {
    class Service {
      greet() {
        return 'hi';
      }
    }
    const tree = {
      a: {
        b: () => 1,
        get trap() {
          throw new Error('getter ran');
        },
      },
      svc: new Service(),
      fn: Object.assign(() => 2, { nested: () => 3 }),
    };
    expect(resolveHandler(tree, 'a.b')?.fn(undefined, undefined as never)).toBe(1);
    expect(resolveHandler(tree, 'fn.nested')?.fn(undefined, undefined as never)).toBe(3);
    for (const path of [
      'a.trap',
      'svc.greet',
      'a.toString',
      '__proto__',
      'a.__proto__',
      'constructor',
      'a.constructor',
      'fn.call',
      'fn.prototype',
      'a',
      '',
      '.a.b',
      'a.b.',
      'x'.repeat(600),
    ]) {
      expect(resolveHandler(tree, path), path).toBeUndefined();
    }
  });

  test('$status and $drain admin methods (toto control commands), guarded by a token', async () => {
    const worker = await startZmqWorker({ handlers, admin: { token: 'root' } });
    cleanup.push(() => worker.close());
    const conn = createWorkerConnection({ addresses: worker.address });
    cleanup.push(() => conn.close());
    expect((await rejection(conn.invoke('$status'))).code).toBe('NOT_FOUND');
    const status = (await conn.invoke('$status', undefined, {
      meta: { authorization: 'root' },
    })) as { state: string; concurrency: number };
    expect(status).toMatchObject({ state: 'running', concurrency: 64 });
    expect(
      await conn.invoke('$drain', { timeoutMs: 100 }, { meta: { authorization: 'root' } }),
    ).toEqual({ state: 'draining' });
    await waitFor(() => worker.status().state === 'draining');
    expect((await rejection(conn.invoke('math.add', { a: 1, b: 1 }))).code).toMatch(
      /UNAVAILABLE|TIMEOUT/,
    );
  });

  test('a forced drain aborts the signals of handlers that outlive it', async () => {
    let reason: unknown;
    const worker = await startZmqWorker({
      handlers: {
        hang: (_p: unknown, ctx: { signal: AbortSignal }) =>
          new Promise((_r, reject) =>
            ctx.signal.addEventListener('abort', () => reject((reason = ctx.signal.reason))),
          ),
      },
    });
    cleanup.push(() => worker.close());
    const conn = createWorkerConnection({ addresses: worker.address });
    cleanup.push(() => conn.close());
    const call = rejection(conn.invoke('hang'));
    await waitFor(() => worker.status().active === 1);
    await worker.drain({ timeoutMs: 50 });
    expect(isWorkerRpcError(reason, 'UNAVAILABLE')).toBe(true);
    expect((await call).code).toBe('UNAVAILABLE');
  });

  test('a handler failing with the AbortError of its aborted signal answers the abort reason, not INTERNAL', async () => {
    const worker = await startZmqWorker({
      handlers: {
        sleep: (_p: unknown, ctx: { signal: AbortSignal }) =>
          sleepFor(10_000, undefined, { signal: ctx.signal }),
        fetchLike: (_p: unknown, ctx: { signal: AbortSignal }) =>
          new Promise((_r, reject) =>
            ctx.signal.addEventListener('abort', () =>
              reject(new DOMException('This operation was aborted', 'AbortError')),
            ),
          ),
      },
    });
    cleanup.push(() => worker.close());
    const conn = createWorkerConnection({ addresses: worker.address });
    cleanup.push(() => conn.close());
    const calls = [rejection(conn.invoke('sleep')), rejection(conn.invoke('fetchLike'))];
    await waitFor(() => worker.status().active === 2);
    await worker.drain({ timeoutMs: 50 });
    expect((await Promise.all(calls)).map(e => e.code)).toEqual(['UNAVAILABLE', 'UNAVAILABLE']);
  });

  test('dedupe window: duplicates join the running call or replay the stored result, bounded by max', async () => {
    let runs = 0;
    const worker = createWorker({
      transport: zmqWorkerTransport({ bind: 'tcp://127.0.0.1:0' }),
      dedupe: { ttlMs: 60_000, max: 3 },
      handlers: {
        once: async (p: { n: number }) => {
          runs++;
          await new Promise(r => setTimeout(r, 50));
          return p.n;
        },
      },
    });
    await worker.start();
    cleanup.push(() => worker.close());
    const conn = createWorkerConnection({ addresses: worker.addresses[0]! });
    cleanup.push(() => conn.close());
    const same = await Promise.all(
      [1, 2, 3].map(() => conn.invoke('once', { n: 1 }, { idempotencyKey: 'same' })),
    );
    expect(same).toEqual([1, 1, 1]);
    expect(runs).toBe(1);
    expect(await conn.invoke('once', { n: 1 }, { idempotencyKey: 'same' })).toBe(1);
    expect(runs).toBe(1);
    for (let i = 0; i < 5; i++) await conn.invoke('once', { n: i }, { idempotencyKey: `k${i}` });
    expect(worker.status().dedupeEntries).toBeLessThanOrEqual(3);
    expect(await conn.invoke('once', { n: 9 }, { idempotencyKey: 'same' })).toBe(9); // evicted: runs again
  });
});
