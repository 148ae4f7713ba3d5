import { inspect } from 'node:util';
import { captureWarnings, waitFor } from '@x/testkit';
import { afterEach, describe, expect, test } from 'vitest';
import { asynchronous } from './asynchronous.js';
import { WorkerRpcError, isWorkerRpcError } from './errors.js';
import {
  activeTimers,
  delay,
  startFixture,
  startHttpWorker,
  startZmqWorker,
} from './test/helpers.js';
import { zmqWorkerTransport } from './zmqWorkerTransport.js';
import { zmqTransport } from './zmqTransport.js';
import { httpTransport } from './httpTransport.js';
import { httpWorkerTransport } from './httpWorkerTransport.js';
import { createBroker } from './broker.js';
import { createWorker, type HandlerContext } from './worker.js';
import { WorkerConnection, createWorkerConnection } from './workerConnection.js';
import { PROXY_RESERVED_NAMES } from './internal/proxy.js';
import { optionsFromEnv } from './optionsFromEnv.js';
import { gzip } from './compression.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c().catch(() => {});
});
function later<T extends { close(): Promise<unknown> } | { kill(): Promise<unknown> }>(
  resource: T,
): T {
  cleanup.push(() => ('close' in resource ? resource.close() : resource.kill()));
  return resource;
}

async function rejection(promise: Promise<unknown>): Promise<WorkerRpcError> {
  try {
    await promise;
  } catch (error) {
    if (!isWorkerRpcError(error)) throw error;
    return error;
  }
  throw new Error('expected a rejection');
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        reject(signal.reason);
      },
      { once: true },
    );
  });

/** The synchronous error of `make`, or undefined. */
function thrown(make: () => unknown): (Error & { code?: string }) | undefined {
  try {
    make();
  } catch (error) {
    return error as Error & { code?: string };
  }
  return undefined;
}

describe('durations and addresses (issue 12)', () => {
  test('timeoutMs 3e9 and 1e12 mean no deadline: the call succeeds, no early TIMEOUT, no TimeoutOverflowWarning', async () => {
    const worker = later(
      await startZmqWorker({ handlers: { slow: () => delay(80).then(() => 'done') } }),
    );
    const warnings = captureWarnings();
    const conn = later(createWorkerConnection({ addresses: worker.address, timeoutMs: 3e9 }));
    expect(conn.timeoutMs).toBe(Infinity);
    expect(await conn.invoke('slow')).toBe('done');
    expect(await conn.invoke('slow', undefined, { timeoutMs: 1e12 })).toBe('done');
    const retried = later(
      createWorkerConnection({
        addresses: worker.address,
        retry: { maxAttempts: 2, attemptTimeoutMs: 3e9 },
      }),
    );
    expect(await retried.invoke('slow', undefined, { idempotent: true })).toBe('done');
    expect((await warnings.stop()).map(w => w.name)).not.toContain('TimeoutOverflowWarning');
  });

  test('timeoutMs "300" and NaN are INVALID_ARGUMENT naming the field, on the connection and per call', async () => {
    for (const [timeoutMs, received] of [
      ['300', '"300"'],
      [Number.NaN, 'NaN'],
    ] as const) {
      const error = thrown(() => createWorkerConnection({ timeoutMs: timeoutMs as never }));
      expect(error?.code).toBe('INVALID_ARGUMENT');
      expect(error!.message).toBe(
        `timeoutMs: expected a number of ms > 0 and <= 2147483647, or Infinity (above: no limit), received ${received}`,
      );
    }
    expect(
      thrown(() => createWorkerConnection({ retry: { attemptTimeoutMs: '5' as never } }))?.message,
    ).toMatch(/^retry.attemptTimeoutMs: expected .* received "5"/);
    const conn = later(createWorkerConnection({ addresses: 'tcp://127.0.0.1:9' }));
    const error = await rejection(conn.invoke('x', undefined, { timeoutMs: '300' as never }));
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toMatch(/^timeoutMs: expected .* received "300"$/);
    expect(
      thrown(() =>
        createWorker({
          handlers: {},
          transport: zmqWorkerTransport({ bind: 'tcp://127.0.0.1:0' }),
          drainTimeoutMs: Number.NaN,
        }),
      )?.message,
    ).toMatch(/^drainTimeoutMs: .* received NaN$/);
    expect(thrown(() => zmqTransport({ sendTimeoutMs: '5' as never }))?.message).toBe(
      'sendTimeoutMs: expected a number of ms >= 0 and <= 2147483647, received "5"',
    );
    expect(thrown(() => httpTransport({ keepAliveTimeoutMs: 3e9 }))?.code).toBe('INVALID_ARGUMENT');
    expect(
      thrown(() =>
        createWorker({
          handlers: {},
          transport: zmqWorkerTransport({ bind: 'tcp://127.0.0.1:0' }),
          dedupe: { ttlMs: Number.NaN },
        }),
      )?.message,
    ).toMatch(/^dedupe.ttlMs: .* received NaN$/);
    expect(
      thrown(() => zmqWorkerTransport({ connect: 'tcp://127.0.0.1:9', announceIntervalMs: 3e9 }))
        ?.message,
    ).toMatch(/^announceIntervalMs: expected .* received 3000000000$/);
    expect(
      thrown(() =>
        createBroker({
          frontend: 'tcp://127.0.0.1:0',
          backend: 'tcp://127.0.0.1:0',
          heartbeatIntervalMs: 3e9,
        }),
      )?.message,
    ).toMatch(/^heartbeatIntervalMs: expected .* received 3000000000$/);
  });

  test('a malformed client address fails at once with INVALID_ARGUMENT naming it (zmq and http), not 10 s later', () => {
    for (const address of [
      'tcp://127.0.0.1',
      'foo://x:1',
      'tcp://127.0.0.1:notaport',
      'localhost:5555',
    ]) {
      const started = performance.now();
      const error = thrown(() => createWorkerConnection({ addresses: address }));
      expect(performance.now() - started).toBeLessThan(1_000);
      expect(error?.code, address).toBe('INVALID_ARGUMENT');
      expect(error!.message).toContain(`received ${JSON.stringify(address)}`);
      // a valid address first: nothing is opened when a later one is malformed
      expect(
        thrown(() => createWorkerConnection({ addresses: ['tcp://127.0.0.1:9', address] }))?.code,
      ).toBe('INVALID_ARGUMENT');
    }
    expect(
      thrown(() =>
        createWorkerConnection({ addresses: 'http://127.0.0.1:99999', transport: 'http' }),
      )?.message,
    ).toMatch(/^address: expected http\(s\):\/\/host/);
    expect(
      thrown(() => createWorkerConnection({ addresses: 'tcp://127.0.0.1:5', transport: 'http' }))
        ?.code,
    ).toBe('INVALID_ARGUMENT');
    const conn = later(createWorkerConnection({ addresses: 'tcp://127.0.0.1:9' }));
    expect(thrown(() => conn.addConnection('localhost:5555'))?.code).toBe('INVALID_ARGUMENT');
    expect(conn.endpoints().map(e => e.address)).toEqual(['tcp://127.0.0.1:9']);
  });

  test('malformed worker bind and connect addresses fail at once; valid forms still work', async () => {
    expect(thrown(() => zmqWorkerTransport({ bind: 'tcp://127.0.0.1' }))?.message).toBe(
      'bind: expected tcp://interface:port (port 0-65535 or *), ipc://path or inproc://name, received "tcp://127.0.0.1"',
    );
    expect(thrown(() => zmqWorkerTransport({ connect: 'localhost:5555' }))?.message).toMatch(
      /^connect: expected tcp:\/\/host:port/,
    );
    expect(thrown(() => httpWorkerTransport({ port: 70_000 }))?.message).toBe(
      'port: expected an integer in 0-65535 (0: a free port), received 70000',
    );
    expect(thrown(() => httpWorkerTransport({ port: '80' as never }))?.code).toBe(
      'INVALID_ARGUMENT',
    );
    expect(
      thrown(() => createBroker({ frontend: 'tcp://*', backend: 'tcp://127.0.0.1:0' }))?.message,
    ).toMatch(/^frontend: expected/);
    const zmqWorker = later(await startZmqWorker({ handlers: { hi: () => 'zmq' } }));
    const httpWorker = later(await startHttpWorker({ handlers: { hi: () => 'http' } }));
    const z = later(createWorkerConnection({ addresses: ` ${zmqWorker.address} ` }));
    const h = later(createWorkerConnection({ addresses: httpWorker.address }));
    expect([await z.invoke('hi'), await h.invoke('hi')]).toEqual(['zmq', 'http']);
  });
});

describe('ZeroMQ connection', () => {
  test('round-robin across 3 workers (toto behaviour)', async () => {
    const workers = await Promise.all(
      ['a', 'b', 'c'].map(name => startZmqWorker({ handlers: { whoami: () => name } }).then(later)),
    );
    const conn = later(
      createWorkerConnection({
        addresses: workers.map(w => w.address).join(','),
        balancer: 'round-robin',
      }),
    );
    await waitFor(() => conn.endpoints().every(e => e.state === 'up'));
    const seen: unknown[] = [];
    for (let i = 0; i < 30; i++) seen.push(await conn.invoke('whoami'));
    const counts = Object.fromEntries(
      ['a', 'b', 'c'].map(n => [n, seen.filter(s => s === n).length]),
    );
    expect(counts).toEqual({ a: 10, b: 10, c: 10 });
    // strictly cyclic, like toto's DEALER
    for (let i = 3; i < 30; i++) expect(seen[i]).toBe(seen[i - 3]);
  });

  test('least-outstanding (default) sends more to the worker that advertises more credit', async () => {
    const small = later(
      await startZmqWorker({
        concurrency: 1,
        handlers: {
          work: async () => {
            await delay(20);
            return 'small';
          },
        },
      }),
    );
    const big = later(
      await startZmqWorker({
        concurrency: 8,
        handlers: {
          work: async () => {
            await delay(20);
            return 'big';
          },
        },
      }),
    );
    const conn = later(createWorkerConnection({ addresses: [small.address, big.address] }));
    await waitFor(() => conn.endpoints().every(e => e.state === 'up' && e.capacity > 0));
    await Promise.all([conn.invoke('work'), conn.invoke('work')]); // learn credit
    const results = await Promise.all(Array.from({ length: 45 }, () => conn.invoke('work')));
    const bigShare = results.filter(r => r === 'big').length;
    expect(bigShare).toBeGreaterThan(30);
    expect(small.status().active).toBe(0);
  });

  test('a worker killed mid-call ends the call with UNAVAILABLE or TIMEOUT; an idempotent retry succeeds elsewhere', async () => {
    const child = later(await startFixture('worker', ['--name', 'doomed']));
    const survivor = later(
      await startZmqWorker({
        handlers: { slow: (p: { ms: number }) => ({ name: 'survivor', ms: p.ms }) },
      }),
    );

    // non-idempotent: the call fails
    const plain = later(createWorkerConnection({ addresses: child.address, timeoutMs: 4_000 }));
    await waitFor(() => plain.endpoints()[0]!.state === 'up');
    const lost = rejection(plain.invoke('slow', { ms: 10_000 }));
    await delay(300);
    // idempotent: retried on the survivor with the same request id
    const retrying = later(
      createWorkerConnection({
        addresses: child.address,
        timeoutMs: 4_000,
        retry: { maxAttempts: 3 },
        methods: { slow: { idempotent: true } },
      }),
    );
    await waitFor(() => retrying.endpoints()[0]!.state === 'up');
    const saved = retrying.invoke('slow', { ms: 10_000 });
    await delay(300);
    retrying.addConnection(survivor.address);
    await waitFor(() => retrying.endpoints().filter(e => e.state === 'up').length === 2);
    await child.kill('SIGKILL');

    const error = await lost;
    expect(['UNAVAILABLE', 'TIMEOUT']).toContain(error.code);
    expect(error.endpoint).toBe(child.address);
    expect(await saved).toEqual({ name: 'survivor', ms: 10_000 });
  });

  test('a retried idempotent call executes exactly once (dedupe in the worker)', async () => {
    const executions = new Map<string, number>();
    const attempts: number[] = [];
    const worker = later(
      await startZmqWorker({
        handlers: {
          charge: async (p: { amount: number }, ctx: HandlerContext) => {
            executions.set(ctx.requestId, (executions.get(ctx.requestId) ?? 0) + 1);
            attempts.push(ctx.attempt);
            await delay(300);
            return { charged: p.amount };
          },
        },
      }),
    );
    const conn = later(
      createWorkerConnection({
        addresses: worker.address,
        retry: { maxAttempts: 5, attemptTimeoutMs: 80, backoff: undefined },
        methods: { charge: { idempotent: true } },
      }),
    );
    expect(await conn.invoke('charge', { amount: 5 })).toEqual({ charged: 5 });
    expect([...executions.values()]).toEqual([1]);
    expect(attempts).toEqual([0]);
    expect(worker.status().deduplicated).toBeGreaterThanOrEqual(1);
    // a later duplicate of the same key replays the stored result without running again
    const keyed = await Promise.all([
      conn.invoke('charge', { amount: 7 }, { idempotencyKey: 'order-1' }),
      conn.invoke('charge', { amount: 7 }, { idempotencyKey: 'order-1' }),
    ]);
    expect(keyed).toEqual([{ charged: 7 }, { charged: 7 }]);
    expect(executions.size).toBe(2);
  });

  test('cancel aborts the handler signal and rejects with CANCELLED', async () => {
    let reason: unknown;
    let started = false;
    const worker = later(
      await startZmqWorker({
        handlers: {
          wait: async (_p: unknown, ctx: HandlerContext) => {
            started = true;
            try {
              await sleep(5_000, ctx.signal);
            } catch (e) {
              reason = e;
              throw e;
            }
          },
        },
      }),
    );
    const conn = later(createWorkerConnection({ addresses: worker.address }));
    const controller = new AbortController();
    const call = conn.invoke('wait', {}, { signal: controller.signal });
    await waitFor(() => started);
    controller.abort();
    expect((await rejection(call)).code).toBe('CANCELLED');
    await waitFor(() => reason !== undefined);
    expect(isWorkerRpcError(reason, 'CANCELLED')).toBe(true);
    await waitFor(() => worker.status().active === 0);
  });

  test('the deadline shrinks across a nested call and the worker aborts at the deadline', async () => {
    let outerBudget = 0;
    const inner = later(
      await startZmqWorker({
        handlers: {
          inner: {
            budget: (_p: unknown, ctx: HandlerContext) => ({
              remaining: ctx.remainingMs(),
              finite: Number.isFinite(ctx.deadline),
            }),
          },
        },
      }),
    );
    const innerConn = later(createWorkerConnection({ addresses: inner.address }));
    const outer = later(
      await startZmqWorker({
        handlers: {
          outer: async (_p: unknown, ctx: HandlerContext) => {
            outerBudget = ctx.remainingMs();
            await delay(150);
            return innerConn.invoke('inner.budget', {}, { parent: ctx, timeoutMs: 60_000 });
          },
        },
      }),
    );
    const conn = later(createWorkerConnection({ addresses: outer.address }));
    const result = (await conn.invoke('outer', {}, { timeoutMs: 1_000 })) as {
      remaining: number;
      finite: boolean;
    };
    expect(outerBudget).toBeLessThanOrEqual(1_000);
    expect(outerBudget).toBeGreaterThan(500);
    expect(result.finite).toBe(true);
    expect(result.remaining).toBeLessThan(outerBudget - 140);
    expect(result.remaining).toBeGreaterThan(0);

    // a handler that ignores nothing: its signal aborts with DEADLINE_EXCEEDED
    let abortedWith: unknown;
    const w = later(
      await startZmqWorker({
        handlers: {
          hang: async (_p: unknown, ctx: HandlerContext) =>
            sleep(5_000, ctx.signal).catch(e => {
              abortedWith = e;
              throw e;
            }),
        },
      }),
    );
    const c = later(createWorkerConnection({ addresses: w.address }));
    const started = Date.now();
    expect((await rejection(c.invoke('hang', {}, { timeoutMs: 120 }))).code).toBe('TIMEOUT');
    expect(Date.now() - started).toBeLessThan(1_000);
    await waitFor(() => abortedWith !== undefined);
    expect(isWorkerRpcError(abortedWith, 'DEADLINE_EXCEEDED')).toBe(true);
  });

  test('work whose budget is spent while queued in the worker is not started', async () => {
    const ran: string[] = [];
    const worker = later(
      await startZmqWorker({
        concurrency: 1,
        handlers: {
          job: async (p: { id: string; ms: number }) => {
            ran.push(p.id);
            await delay(p.ms);
            return p.id;
          },
        },
      }),
    );
    const first = later(createWorkerConnection({ addresses: worker.address }));
    const second = later(createWorkerConnection({ addresses: worker.address }));
    await waitFor(() => second.endpoints()[0]!.state === 'up');
    const long = first.invoke('job', { id: 'first', ms: 300 });
    await waitFor(() => ran.length === 1);
    // the second client has nothing in flight, so it may probe the busy worker: the call waits in the worker queue
    expect(
      (await rejection(second.invoke('job', { id: 'second', ms: 1 }, { timeoutMs: 100 }))).code,
    ).toBe('TIMEOUT');
    expect(worker.status().queued).toBe(1);
    expect(await long).toBe('first');
    await waitFor(() => worker.status().queued === 0);
    expect(ran).toEqual(['first']);
    expect(worker.status().failed).toBe(1);
  });

  test('typed remote errors: application codes, toto codes, INTERNAL, NOT_FOUND for prototype names', async () => {
    const worker = later(
      await startZmqWorker({
        handlers: {
          math: { add: (p: { a: number; b: number }) => p.a + p.b },
          fail: {
            typed: () => {
              throw new WorkerRpcError('PAYMENT_DECLINED', 'card declined', {
                details: { retryIn: 5 },
              });
            },
            toto: () => {
              throw { code: 1004, value: 'not authorized' };
            },
            plain: () => {
              throw new Error('boom');
            },
          },
        },
        admin: false,
      }),
    );
    const conn = later(createWorkerConnection({ addresses: worker.address }));
    const typed = await rejection(conn.invoke('fail.typed'));
    expect(typed).toMatchObject({
      code: 'PAYMENT_DECLINED',
      message: 'card declined',
      details: { retryIn: 5 },
      remote: true,
      retryable: false,
      endpoint: worker.address,
    });
    expect(await rejection(conn.invoke('fail.toto'))).toMatchObject({
      code: 'NOT_AUTHORIZED',
      appCode: 1004,
      message: 'not authorized',
    });
    expect(await rejection(conn.invoke('fail.plain'))).toMatchObject({
      code: 'INTERNAL',
      message: 'boom',
    });
    for (const name of [
      '__proto__',
      'constructor',
      'toString',
      'hasOwnProperty',
      'valueOf',
      'math.constructor',
      'math.__proto__',
      'math.add.call',
      'math.add.constructor',
      'math..add',
      'math',
      '__proto__.toString',
      'constructor.prototype',
      '$status',
      '$drain',
      'math.add.',
    ]) {
      expect((await rejection(conn.invoke(name))).code, name).toBe('NOT_FOUND');
    }
    expect(await conn.invoke('math.add', { a: 2, b: 3 })).toBe(5);
    expect(worker.status().state).toBe('running');
  });

  test('bounded: OVERLOADED from the local queue and from a full worker; NO_ENDPOINTS; 0 timeout refused', async () => {
    const worker = later(
      await startZmqWorker({ concurrency: 1, queue: 0, handlers: { block: () => delay(200) } }),
    );
    const conn = later(
      createWorkerConnection({ addresses: worker.address, maxInFlight: 1, maxQueued: 1 }),
    );
    await waitFor(() => conn.endpoints()[0]!.state === 'up');
    const a = conn.invoke('block');
    const b = conn.invoke('block');
    expect((await rejection(conn.invoke('block'))).code).toBe('OVERLOADED');
    await Promise.all([a, b]);
    // two clients that both believe the worker is free: the worker's own bound (queue 0) answers OVERLOADED
    const x = later(createWorkerConnection({ addresses: worker.address }));
    const y = later(createWorkerConnection({ addresses: worker.address }));
    await waitFor(() => x.endpoints()[0]!.state === 'up' && y.endpoints()[0]!.state === 'up');
    const results = await Promise.allSettled([
      x.invoke('block'),
      delay(20).then(() => y.invoke('block')),
    ]);
    expect(
      results.map(r => (r.status === 'rejected' ? (r.reason as WorkerRpcError).code : 'ok')),
    ).toEqual(['ok', 'OVERLOADED']);

    const none = later(createWorkerConnection({}));
    expect((await rejection(none.invoke('x'))).code).toBe('NO_ENDPOINTS');
    expect((await rejection(conn.invoke('block', undefined, { timeoutMs: 0 }))).code).toBe(
      'INVALID_ARGUMENT',
    );
    expect(() => createWorkerConnection({ timeoutMs: 0 })).toThrow(WorkerRpcError);
  });

  test('waitForReady: a call waits for a worker that is not there yet, until its deadline', async () => {
    // no endpoint configured yet (workers still starting): the call waits instead of NO_ENDPOINTS
    const conn = later(createWorkerConnection({ waitForReady: true, timeoutMs: 10_000 }));
    const started = performance.now();
    const answer = conn.invoke('math.add', { a: 2, b: 3 });
    await delay(200);
    const worker = later(
      await startZmqWorker({
        handlers: { math: { add: ({ a, b }: { a: number; b: number }) => a + b } },
      }),
    );
    conn.addConnection(worker.address);
    expect(await answer).toBe(5);
    expect(performance.now() - started).toBeGreaterThanOrEqual(190);

    // every endpoint removed: it waits again, and settles by its deadline when none comes
    await conn.removeConnection(worker.address, { drainMs: 0 });
    const waited = performance.now();
    const error = await rejection(conn.invoke('math.add', { a: 1, b: 1 }, { timeoutMs: 300 }));
    expect(error.code).toBe('TIMEOUT');
    expect(performance.now() - waited).toBeGreaterThanOrEqual(290);

    // a call can opt out (fail fast), and the default connection fails fast
    expect(
      (await rejection(conn.invoke('math.add', { a: 1, b: 1 }, { waitForReady: false }))).code,
    ).toBe('NO_ENDPOINTS');
    const fast = later(createWorkerConnection({}));
    expect((await rejection(fast.invoke('x'))).code).toBe('NO_ENDPOINTS');
    const waits = later(createWorkerConnection({ timeoutMs: 10_000 }));
    const pending = waits.invoke(
      'math.add',
      { a: 4, b: 4 },
      { waitForReady: true, timeoutMs: 200 },
    );
    expect((await rejection(pending)).code).toBe('TIMEOUT');
  });

  test('negative or infinite timeouts never expire and arm no timer; legacy mode resolves timeouts as values', async () => {
    const worker = later(
      await startZmqWorker({ handlers: { slow: () => delay(150).then(() => 'done') } }),
    );
    const conn = later(createWorkerConnection({ addresses: worker.address, timeoutMs: -1 }));
    await waitFor(() => conn.endpoints()[0]!.state === 'up');
    const before = activeTimers();
    const call = conn.invoke('slow');
    expect(activeTimers()).toBe(before);
    expect(await call).toBe('done');
    const legacy = later(
      createWorkerConnection({ addresses: worker.address, legacyErrorsAsValues: true }),
    );
    expect(await legacy.invoke('slow', {}, { timeoutMs: 20 })).toEqual({ error: 'timeout' });
    expect(await legacy.invoke('missing')).toEqual({
      error: { code: 'NOT_FOUND', value: expect.any(String) },
    });
  });

  test('removeConnection drains calls in flight first; setConnections adds and removes', async () => {
    const a = later(
      await startZmqWorker({
        handlers: {
          who: async () => {
            await delay(200);
            return 'a';
          },
        },
      }),
    );
    const b = later(await startZmqWorker({ handlers: { who: () => 'b' } }));
    const conn = later(createWorkerConnection({ addresses: [a.address] }));
    await waitFor(() => conn.endpoints()[0]!.state === 'up');
    const inFlight = conn.invoke('who');
    await delay(30);
    const removal = conn.removeConnection(a.address);
    conn.addConnection(b.address);
    expect(await inFlight).toBe('a');
    await removal;
    expect(conn.addresses).toEqual([b.address]);
    expect(await conn.invoke('who')).toBe('b');
    await conn.setConnections([a.address]);
    expect(conn.addresses).toEqual([a.address]);
    expect(await conn.invoke('who')).toBe('a');
    await conn.removeConnection('tcp://127.0.0.1:1'); // unknown: ignored, unlike toto's KeyError
  });

  test("ack: 'delivery' resolves once the worker accepted an asynchronous handler", async () => {
    let finished = false;
    const worker = later(
      await startZmqWorker({
        handlers: {
          report: asynchronous(async () => {
            await delay(300);
            finished = true;
            return 'report';
          }),
        },
      }),
    );
    const conn = later(createWorkerConnection({ addresses: worker.address }));
    const started = Date.now();
    expect(await conn.invoke('report', {}, { ack: 'delivery' })).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(250);
    expect(finished).toBe(false);
    expect(await conn.invoke('report')).toBe('report'); // waiting for the result still works
  });

  test('compression in both directions above the threshold, msgpack codec', async () => {
    const calls = { compress: 0, decompress: 0 };
    const g = gzip();
    const counting = {
      name: 'gzip',
      compress: (d: Uint8Array) => (calls.compress++, g.compress(d)),
      decompress: (d: Uint8Array, m: number) => (calls.decompress++, g.decompress(d, m)),
    };
    const worker = later(
      await startZmqWorker({ handlers: { echo: (p: unknown) => p }, compressors: [counting] }),
    );
    const conn = later(
      createWorkerConnection({
        addresses: worker.address,
        codec: 'msgpack',
        compression: { compressor: counting, thresholdBytes: 100 },
      }),
    );
    const big = { text: 'x'.repeat(5_000), bin: Buffer.alloc(300, 7) };
    const out = (await conn.invoke('echo', big)) as typeof big;
    expect(out.text).toBe(big.text);
    expect(Buffer.from(out.bin)).toEqual(big.bin);
    expect(calls).toEqual({ compress: 2, decompress: 2 }); // request and reply, on both ends
    expect(await conn.invoke('echo', { small: 1 })).toEqual({ small: 1 });
    expect(calls).toEqual({ compress: 2, decompress: 2 });
  });

  test('hedged requests: a slow worker is overtaken and the loser is cancelled', async () => {
    let loserAborted = false;
    const slow = later(
      await startZmqWorker({
        handlers: {
          get: async (_p: unknown, ctx: HandlerContext) => {
            await sleep(2_000, ctx.signal).catch(e => {
              loserAborted = true;
              throw e;
            });
            return 'slow';
          },
        },
      }),
    );
    const fast = later(await startZmqWorker({ handlers: { get: () => 'fast' } }));
    const conn = later(
      createWorkerConnection({
        addresses: [slow.address],
        hedge: { delay: 30, maxExtraLoad: 1 },
        methods: { get: { idempotent: true } },
        balancer: 'round-robin',
      }),
    );
    await waitFor(() => conn.endpoints()[0]!.state === 'up');
    conn.addConnection(fast.address);
    await waitFor(() => conn.endpoints().every(e => e.state === 'up'));
    const started = Date.now();
    expect(await conn.invoke('get')).toBe('fast');
    expect(Date.now() - started).toBeLessThan(1_000);
    await waitFor(() => loserAborted);
  });

  test('a draining worker gets no new calls; its calls in flight finish', async () => {
    const a = later(
      await startZmqWorker({
        handlers: {
          who: async () => {
            await delay(150);
            return 'a';
          },
        },
      }),
    );
    const b = later(await startZmqWorker({ handlers: { who: () => 'b' } }));
    const conn = later(
      createWorkerConnection({
        addresses: [a.address, b.address],
        balancer: 'round-robin',
        retry: 3,
        methods: { who: { idempotent: true } },
      }),
    );
    await waitFor(() => conn.endpoints().every(e => e.state === 'up'));
    const calls = [conn.invoke('who'), conn.invoke('who')];
    await delay(20);
    const drained = a.drain({ timeoutMs: 2_000 });
    await waitFor(() => conn.endpoints().find(e => e.address === a.address)?.state !== 'up');
    expect((await Promise.all(calls)).sort()).toEqual(['a', 'b']);
    for (let i = 0; i < 5; i++) expect(await conn.invoke('who')).toBe('b');
    await drained;
    expect(a.status().state).toBe('draining');
  });

  test('methods named then, call, apply, bind, toString, valueOf, inspect: unreachable by the proxy, called with invoke', async () => {
    const names = ['then', 'call', 'apply', 'bind', 'toString', 'valueOf', 'inspect'];
    const jobs = Object.fromEntries(names.map(n => [n, () => `ran ${n}`]));
    const worker = later(await startZmqWorker({ handlers: { jobs } }));
    const conn = later(createWorkerConnection({ addresses: worker.address }));
    for (const name of names) {
      expect(PROXY_RESERVED_NAMES).toContain(name);
      expect((conn.proxy as any).jobs[name]).toBeUndefined();
      expect(await conn.invoke(`jobs.${name}`, {})).toBe(`ran ${name}`);
    }
  });

  test('the proxy is typed by path, and awaiting or printing it sends nothing', async () => {
    let calls = 0;
    const worker = later(
      await startZmqWorker({
        handlers: { math: { add: (p: { a: number; b: number }) => (calls++, p.a + p.b) } },
      }),
    );
    const conn = later(
      createWorkerConnection<{ math: { add(p: { a: number; b: number }): number } }>({
        addresses: worker.address,
      }),
    );
    expect(await conn.proxy.math.add({ a: 1, b: 2 })).toBe(3);
    expect(calls).toBe(1);
    expect(await (conn.proxy as unknown as Promise<unknown>)).toBe(conn.proxy);
    expect(await (conn.proxy.math as unknown as Promise<unknown>)).toBe(conn.proxy.math);
    expect(inspect(conn.proxy.math)).toMatch(/workerRpcProxy/);
    expect(inspect(conn.proxy, { showProxy: true })).toContain('Proxy');
    expect(JSON.stringify({ p: conn.proxy.math })).toBe('{}');
    expect(
      `${String((conn.proxy as unknown as Record<symbol, unknown>)[Symbol.toPrimitive])}`,
    ).toBe('undefined');
    await delay(20);
    expect(calls).toBe(1);
  });

  test('10 000 calls leave no timers, no map entries and no queue behind', async () => {
    const worker = later(
      await startZmqWorker({
        handlers: {
          echo: (p: unknown) => p,
          maybe: () => {
            throw new WorkerRpcError('ODD', 'odd');
          },
        },
      }),
    );
    const conn = later(
      createWorkerConnection({
        addresses: worker.address,
        retry: 2,
        methods: { echo: { idempotent: true } },
      }),
    );
    await conn.invoke('echo', 0);
    const timersBefore = activeTimers();
    let failures = 0;
    for (let batch = 0; batch < 10; batch++) {
      const calls = Array.from({ length: 1_000 }, (_, i) =>
        i % 2 === 0
          ? conn.invoke('echo', { i })
          : conn.invoke('maybe', { i }, { timeoutMs: 5_000 }).catch(() => failures++),
      );
      await Promise.all(calls);
    }
    expect(failures).toBe(5_000);
    expect(conn.pending).toBe(0);
    expect(conn.inFlight).toBe(0);
    expect(conn.queued).toBe(0);
    expect(conn.endpoints()[0]!.inFlight).toBe(0);
    expect(worker.pending).toBe(0);
    expect(worker.status()).toMatchObject({ active: 0, queued: 0 });
    expect(worker.status().dedupeEntries).toBeLessThanOrEqual(10_000);
    expect(activeTimers()).toBeLessThanOrEqual(timersBefore);
  });

  test('a worker restarted on the same address is reconnected; state changes are reported as events', async () => {
    const first = await startZmqWorker({ handlers: { v: () => 1 } });
    const conn = later(createWorkerConnection({ addresses: first.address }));
    const states: string[] = [];
    conn.onEvent(event => {
      if (event.type === 'endpoint') states.push(event.state);
    });
    expect(await conn.invoke('v')).toBe(1);
    await first.close();
    await waitFor(() => conn.endpoints()[0]!.state === 'down');
    const second = later(
      await startZmqWorker({ handlers: { v: () => 2 } }, { bind: first.address }),
    );
    expect(second.address).toBe(first.address);
    await waitFor(() => conn.endpoints()[0]!.state === 'up', { timeoutMs: 8_000 });
    expect(await conn.invoke('v')).toBe(2);
    // up, (draining when the DRAIN notice wins the race), down, up
    expect(states[0]).toBe('up');
    expect(states).toContain('down');
    expect(states.at(-1)).toBe('up');
  });

  test('close() rejects pending calls with CLOSED and releases sockets; await using works', async () => {
    const worker = later(await startZmqWorker({ handlers: { hang: () => delay(10_000) } }));
    const conn = createWorkerConnection({ addresses: worker.address });
    const call = conn.invoke('hang');
    await delay(30);
    await conn.close();
    expect((await rejection(call)).code).toBe('CLOSED');
    expect((await rejection(conn.invoke('hang'))).code).toBe('CLOSED');
    {
      await using scoped = createWorkerConnection({ addresses: worker.address });
      expect(scoped.addresses).toEqual([worker.address]);
    }
  });
});

describe('WorkerConnection.instance()', () => {
  test('reads WORKER_* variables (toto worker_* options)', async () => {
    const worker = later(await startZmqWorker({ handlers: { hi: () => 'hi' } }));
    const conn = WorkerConnection.instance({
      WORKER_ADDRESS: ` ${worker.address} , `,
      WORKER_TIMEOUT: '2',
      WORKER_SERIALIZATION: 'msgpack',
      WORKER_COMPRESSION: 'gzip',
      WORKER_AUTO_RETRY: 'true',
    });
    cleanup.push(() => WorkerConnection.resetInstance());
    expect(WorkerConnection.instance()).toBe(conn);
    expect(await conn.invoke('hi')).toBe('hi');
    expect(conn.transport.name).toBe('zmq');
    const options = optionsFromEnv({
      WORKER_ADDRESS: 'http://a:1,http://b:2',
      WORKER_TIMEOUT: '-1',
      WORKER_RETRY_COUNT: '2',
      WORKER_PROTOCOL: 'toto',
    });
    expect(options).toMatchObject({
      addresses: ['http://a:1', 'http://b:2'],
      timeoutMs: -1_000, // seconds, toto's unit: negative = never
      retry: { maxAttempts: 3, calls: 'all' },
    });
    expect(options.transport as { name: string; protocol: string }).toMatchObject({
      name: 'http',
      protocol: 'toto',
    });
    expect(() => optionsFromEnv({ WORKER_SERIALIZATION: 'pickle' })).toThrow(RangeError);
  });

  test("WORKER_TIMEOUT is read in seconds, toto's unit (worker_timeout=10.0); a value in ms is refused; WORKER_TIMEOUT_MS", () => {
    expect(optionsFromEnv({ WORKER_TIMEOUT: '10' }).timeoutMs).toBe(10_000);
    expect(optionsFromEnv({ WORKER_TIMEOUT: '0.25' }).timeoutMs).toBe(250);
    expect(optionsFromEnv({ WORKER_TIMEOUT: '-1' }).timeoutMs).toBe(-1_000);
    expect(optionsFromEnv({}).timeoutMs).toBe(10_000);
    expect(optionsFromEnv({ WORKER_TIMEOUT_MS: '1500' }).timeoutMs).toBe(1_500);
    expect(() => optionsFromEnv({ WORKER_TIMEOUT: '10000' })).toThrow(
      /WORKER_TIMEOUT is in seconds .* at most 3600, got 10000: for milliseconds set WORKER_TIMEOUT_MS=10000/,
    );
    expect(() => optionsFromEnv({ WORKER_TIMEOUT: '0' })).toThrow(
      /WORKER_TIMEOUT must be a non-zero number of seconds .* got "0"/,
    );
    expect(() => optionsFromEnv({ WORKER_TIMEOUT: 'ten' })).toThrow(RangeError);
    expect(() => optionsFromEnv({ WORKER_TIMEOUT: '5', WORKER_TIMEOUT_MS: '5000' })).toThrow(
      /not both/,
    );
  });

  test("WORKER_AUTO_RETRY re-sends a plain call after WORKER_TIMEOUT, as toto's auto_retry did", async () => {
    // toto/zmqworkerconnection.py: the periodic sweep re-queues every timed-out message when
    // auto_retry is on (same id, next peer), whatever the method; only a reply ends it.
    let calls = 0;
    const handlers = {
      job: { run: async () => (++calls === 1 ? delay(8_000).then(() => 'late') : 'answered') },
    };
    const a = later(await startZmqWorker({ handlers }));
    const b = later(await startZmqWorker({ handlers }));
    const options = optionsFromEnv({
      WORKER_ADDRESS: `${a.address},${b.address}`,
      WORKER_TIMEOUT: '0.4',
      WORKER_AUTO_RETRY: 'true',
    });
    expect(options.retry).toMatchObject({ maxAttempts: 3, attemptTimeoutMs: 400, calls: 'all' });
    const conn = later(createWorkerConnection(options));
    expect(await conn.invoke('job.run', { n: 1 })).toBe('answered');
    expect(calls).toBe(2);
  });

  test("retry.calls 'all' re-sends plain calls; our worker runs a re-sent call once (dedupe)", async () => {
    let runs = 0;
    const worker = later(
      await startZmqWorker({
        handlers: { slow: { op: async () => (runs++, await delay(900), 'done') } },
      }),
    );
    const conn = later(
      createWorkerConnection({
        addresses: worker.address,
        timeoutMs: 10_000,
        retry: { calls: 'all', maxAttempts: 20, attemptTimeoutMs: 200, budget: false },
      }),
    );
    const seen: number[] = [];
    conn.onEvent(e => {
      if (e.type === 'retry') seen.push(e.attempt);
    });
    expect(await conn.invoke('slow.op', {})).toBe('done');
    expect(seen.length).toBeGreaterThanOrEqual(1); // re-sent while the worker was still busy
    expect(runs).toBe(1);
    expect(worker.status().deduplicated).toBeGreaterThanOrEqual(1);
    // the safe default is unchanged: without `calls: 'all'` a plain call is not re-sent
    const safe = later(
      createWorkerConnection({
        addresses: worker.address,
        timeoutMs: 10_000,
        retry: { maxAttempts: 20, attemptTimeoutMs: 200, budget: false },
      }),
    );
    let retried = 0;
    safe.onEvent(e => void (e.type === 'retry' && retried++));
    expect(await safe.invoke('slow.op', {})).toBe('done');
    expect(retried).toBe(0);
    // and `idempotent: false` opts a call out of `calls: 'all'`
    seen.length = 0;
    expect(await conn.invoke('slow.op', {}, { idempotent: false })).toBe('done');
    expect(seen).toEqual([]);
    expect(() => createWorkerConnection({ retry: { calls: 'some' as 'all' } })).toThrow(
      /retry.calls must be 'idempotent' or 'all', got "some"/,
    );
  });

  test("retry.calls 'all' over HTTP: a re-send does not cancel the running attempt; the handler runs once", async () => {
    let runs = 0;
    const worker = later(
      await startHttpWorker({
        handlers: { slow: { op: async () => (runs++, await delay(900), 'done') } },
      }),
    );
    const conn = later(
      createWorkerConnection({
        addresses: worker.address,
        timeoutMs: 10_000,
        retry: { calls: 'all', maxAttempts: 20, attemptTimeoutMs: 200, budget: false },
      }),
    );
    let retries = 0;
    conn.onEvent(e => void (e.type === 'retry' && retries++));
    expect(await conn.invoke('slow.op', {})).toBe('done');
    expect(retries).toBeGreaterThanOrEqual(1);
    expect(runs).toBe(1);
  });

  test('without zeromq installed, ZeroMQ calls fail with ZMQ_MISSING', async () => {
    const proc = later(await startFixture('noZmq'));
    expect(proc.address).toBe('ZMQ_MISSING');
  });
});
