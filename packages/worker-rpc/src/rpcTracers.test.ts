import { tracingChannel } from 'node:diagnostics_channel';
import { SpanKind, SpanStatusCode, context, propagation, trace } from '@opentelemetry/api';
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { constantBackoff, type TraceMessage } from '@x/resilience';
import { freePort, waitFor } from '@x/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { createBroker } from './broker.js';
import { WorkerRpcError } from './errors.js';
import { httpTransport } from './httpTransport.js';
import { startHttpWorker, startZmqWorker } from './test/helpers.js';
import { createWorker, type HandlerContext } from './worker.js';
import { createWorkerConnection, type WorkerConnection } from './workerConnection.js';
import type { WorkerConnectionOptions } from './workerConnectionOptions.js';
import { zmqTransport } from './zmqTransport.js';
import { zmqWorkerTransport } from './zmqWorkerTransport.js';

const exporter = new InMemorySpanExporter();
let provider: NodeTracerProvider;
const callerTracer = trace.getTracer('test');
const closers: (() => Promise<unknown>)[] = [];

beforeAll(() => {
  provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  provider.register();
});
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  exporter.reset();
});
afterAll(async () => {
  await provider.shutdown();
  trace.disable();
  context.disable();
  propagation.disable();
});

function later<T extends { close(): Promise<unknown> }>(x: T): T {
  closers.push(() => x.close());
  return x;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    });
  });

/** Runs `fn` inside a caller span `caller`, as an application would. */
function asCaller<T>(fn: () => Promise<T>): Promise<T> {
  return callerTracer.startActiveSpan('caller', async span => {
    try {
      return await fn();
    } finally {
      span.end();
    }
  });
}

async function connect(
  address: string,
  options: WorkerConnectionOptions = {},
): Promise<WorkerConnection> {
  const conn = later(createWorkerConnection({ addresses: address, timeoutMs: 5_000, ...options }));
  await waitFor(() => conn.endpoints().every(e => e.state === 'up'));
  return conn;
}

const spans = () => exporter.getFinishedSpans();
const named = (name: string) => spans().filter(s => s.name === name);
const one = (name: string): ReadableSpan => {
  const found = named(name);
  expect(found.map(s => s.name)).toEqual([name]);
  return found[0]!;
};
const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;

/** A handler that records the metadata it got and starts a span of its own. */
function echoHandlers(seen: Record<string, string>[]) {
  return {
    math: {
      add: ({ a, b }: { a: number; b: number }, ctx: HandlerContext) => {
        seen.push({ ...ctx.meta });
        callerTracer.startSpan('inner').end(); // the handler's own span: a child of the worker span
        return a + b;
      },
    },
  };
}

describe.each([
  ['ZeroMQ', startZmqWorker],
  ['HTTP', startHttpWorker],
] as const)('one call over %s', (_name, start) => {
  test('a client span, an attempt span and a worker span in one trace, parented in order', async () => {
    const seen: Record<string, string>[] = [];
    const worker = later(await start({ handlers: echoHandlers(seen) }));
    const conn = await connect(worker.address);

    expect(await asCaller(() => conn.invoke('math.add', { a: 1, b: 2 }))).toBe(3);
    await waitFor(() => named('math.add').length === 2 && named('caller').length === 1);

    const caller = one('caller');
    const attempt = one('attempt');
    const [client, server] = [...named('math.add')].sort((a, b) => a.kind - b.kind).reverse();
    expect(client!.kind).toBe(SpanKind.CLIENT);
    expect(server!.kind).toBe(SpanKind.SERVER);
    const inner = one('inner');
    const traceId = caller.spanContext().traceId;
    for (const s of [client!, attempt, server!, inner])
      expect(s.spanContext().traceId).toBe(traceId);
    expect(parentOf(client!)).toBe(caller.spanContext().spanId);
    expect(parentOf(attempt)).toBe(client!.spanContext().spanId);
    expect(parentOf(server!)).toBe(attempt.spanContext().spanId);
    expect(server!.parentSpanContext?.isRemote).toBe(true);
    expect(parentOf(inner)).toBe(server!.spanContext().spanId);

    const port = Number(new URL(worker.address).port);
    expect(client!.attributes).toMatchObject({
      'rpc.system': 'x-wrpc',
      'rpc.method': 'math.add',
      'x.outcome': 'ok',
      'x.attempts': 1,
    });
    expect(attempt.kind).toBe(SpanKind.CLIENT);
    expect(attempt.attributes).toMatchObject({
      'rpc.system': 'x-wrpc',
      'rpc.method': 'math.add',
      'server.address': '127.0.0.1',
      'server.port': port,
      'x.attempt': 0,
      'x.outcome': 'ok',
    });
    expect(server!.attributes).toMatchObject({
      'rpc.system': 'x-wrpc',
      'rpc.method': 'math.add',
      'x.outcome': 'ok',
    });
    // the traceparent crossed the socket in the wrpc/1 metadata: it names the attempt span
    expect(seen).toHaveLength(1);
    expect(seen[0]!.traceparent).toBe(`00-${traceId}-${attempt.spanContext().spanId}-01`);
  });

  test('a failing handler: the worker span records the error code, the client span error.type', async () => {
    const worker = later(
      await start({
        handlers: {
          fail: () => {
            throw new WorkerRpcError('NOT_FOUND', 'no such order', { appCode: 404 });
          },
        },
      }),
    );
    const conn = await connect(worker.address);
    await expect(asCaller(() => conn.invoke('fail'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await waitFor(() => named('fail').length === 2);
    const client = named('fail').find(s => s.kind === SpanKind.CLIENT)!;
    const server = named('fail').find(s => s.kind === SpanKind.SERVER)!;
    expect(server.status.code).toBe(SpanStatusCode.ERROR);
    expect(server.attributes['x.outcome']).toBe('NOT_FOUND');
    expect(server.attributes['error.type']).toBe('NOT_FOUND');
    expect(client.status.code).toBe(SpanStatusCode.ERROR);
    expect(client.attributes['error.type']).toBe('NOT_FOUND');
    expect(server.spanContext().traceId).toBe(client.spanContext().traceId);
  });
});

describe('attempts', () => {
  test('a retried call shows each attempt, and each worker span is the child of its attempt', async () => {
    let calls = 0;
    const worker = later(
      await startZmqWorker({
        handlers: {
          flaky: () => {
            if (++calls === 1)
              throw new WorkerRpcError('UNAVAILABLE', 'warming up', { retryable: true });
            return 'ok';
          },
        },
      }),
    );
    const conn = await connect(worker.address, {
      retry: { maxAttempts: 3, backoff: constantBackoff(10), budget: false },
      methods: { flaky: { idempotent: true } },
    });
    expect(await asCaller(() => conn.invoke('flaky'))).toBe('ok');
    await waitFor(() => named('flaky').length === 3);

    const client = named('flaky').find(s => s.kind === SpanKind.CLIENT)!;
    const servers = named('flaky').filter(s => s.kind === SpanKind.SERVER);
    const attempts = named('attempt').sort(
      (a, b) => Number(a.attributes['x.attempt']) - Number(b.attributes['x.attempt']),
    );
    expect(attempts.map(a => [a.attributes['x.attempt'], a.attributes['x.outcome']])).toEqual([
      [0, 'UNAVAILABLE'],
      [1, 'ok'],
    ]);
    expect(attempts[0]!.status.code).toBe(SpanStatusCode.ERROR);
    expect(client.attributes['x.attempts']).toBe(2);
    expect(client.status.code).not.toBe(SpanStatusCode.ERROR);
    for (const a of attempts) expect(parentOf(a)).toBe(client.spanContext().spanId);
    expect(servers.map(s => parentOf(s)).sort()).toEqual(
      attempts.map(a => a.spanContext().spanId).sort(),
    );
    const failed = servers.find(s => parentOf(s) === attempts[0]!.spanContext().spanId)!;
    expect(failed.attributes['x.outcome']).toBe('UNAVAILABLE');
  });

  test('a hedged call shows both attempts; the loser is cancelled on both sides', async () => {
    const slow = later(
      await startZmqWorker({
        handlers: {
          get: async (_p: unknown, ctx: HandlerContext) => {
            await sleep(2_000, ctx.signal);
            return 'slow';
          },
        },
      }),
    );
    const fast = later(await startZmqWorker({ handlers: { get: () => 'fast' } }));
    const conn = await connect(slow.address, {
      hedge: { delay: 30, maxExtraLoad: 1 },
      methods: { get: { idempotent: true } },
      balancer: 'round-robin',
    });
    conn.addConnection(fast.address);
    await waitFor(() => conn.endpoints().every(e => e.state === 'up'));
    expect(await asCaller(() => conn.invoke('get'))).toBe('fast');
    await waitFor(() => named('get').length === 3);

    const attempts = named('attempt');
    const byPort = (address: string) =>
      attempts.find(a => a.attributes['server.port'] === Number(new URL(address).port))!;
    expect(byPort(slow.address).attributes['x.outcome']).toBe('cancelled');
    expect(byPort(fast.address).attributes['x.outcome']).toBe('ok');
    const servers = named('get').filter(s => s.kind === SpanKind.SERVER);
    const loser = servers.find(s => parentOf(s) === byPort(slow.address).spanContext().spanId)!;
    expect(loser.attributes['x.outcome']).toBe('CANCELLED');
    const winner = servers.find(s => parentOf(s) === byPort(fast.address).spanContext().spanId)!;
    expect(winner.attributes['x.outcome']).toBe('ok');
  });

  test('the worker span records a deadline that passed while the handler ran', async () => {
    const worker = later(
      await startZmqWorker({
        handlers: {
          slow: async (_p: unknown, ctx: HandlerContext) => {
            await sleep(5_000, ctx.signal);
          },
        },
      }),
    );
    const conn = await connect(worker.address);
    await expect(conn.invoke('slow', undefined, { timeoutMs: 100 })).rejects.toMatchObject({
      code: 'TIMEOUT',
    });
    await waitFor(() => named('slow').length === 2);
    const server = named('slow').find(s => s.kind === SpanKind.SERVER)!;
    expect(server.attributes['x.outcome']).toBe('DEADLINE_EXCEEDED');
    const client = named('slow').find(s => s.kind === SpanKind.CLIENT)!;
    expect(client.attributes['error.type']).toBe('TIMEOUT');
  });
});

describe('through a broker', () => {
  test('the broker forwards the metadata: the worker span is the child of the attempt', async () => {
    const tcp = async () => `tcp://127.0.0.1:${await freePort()}`;
    const broker = later(
      await createBroker({ frontend: await tcp(), backend: await tcp() }).start(),
    );
    const worker = later(
      createWorker({
        handlers: echoHandlers([]),
        transport: zmqWorkerTransport({
          connect: broker.backendAddresses[0]!,
          announceIntervalMs: 200,
        }),
      }),
    );
    await worker.start();
    const conn = await connect(broker.frontendAddresses[0]!);
    expect(await asCaller(() => conn.invoke('math.add', { a: 3, b: 4 }))).toBe(7);
    await waitFor(() => named('math.add').length === 2);
    const server = named('math.add').find(s => s.kind === SpanKind.SERVER)!;
    expect(parentOf(server)).toBe(one('attempt').spanContext().spanId);
  });
});

describe('refused requests', () => {
  test("an unknown method is a server span in the caller's trace, ended with NOT_FOUND", async () => {
    const worker = later(await startZmqWorker({ handlers: echoHandlers([]) }));
    const conn = await connect(worker.address);
    await expect(asCaller(() => conn.invoke('math.nope'))).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    await waitFor(() => named('math.nope').length === 2);
    const server = named('math.nope').find(s => s.kind === SpanKind.SERVER)!;
    expect(server.attributes['x.outcome']).toBe('NOT_FOUND');
    expect(server.status.code).toBe(SpanStatusCode.ERROR);
    expect(parentOf(server)).toBe(one('attempt').spanContext().spanId);
  });
});

describe('toto mode', () => {
  test('over HTTP the trace travels in x-rpc-meta; the worker continues it', async () => {
    const worker = later(await startHttpWorker({ handlers: echoHandlers([]) }));
    const conn = await connect(worker.address, { transport: httpTransport({ protocol: 'toto' }) });
    expect(await asCaller(() => conn.invoke('math.add', { a: 2, b: 2 }))).toBe(4);
    await waitFor(() => named('math.add').length === 2);
    const server = named('math.add').find(s => s.kind === SpanKind.SERVER)!;
    expect(server.attributes['rpc.system']).toBe('toto');
    expect(parentOf(server)).toBe(one('attempt').spanContext().spanId);
  });

  test('over ZeroMQ the frames have no metadata: client spans only, the worker starts its own trace', async () => {
    const worker = later(await startZmqWorker({ handlers: echoHandlers([]) }));
    const conn = await connect(worker.address, { transport: zmqTransport({ protocol: 'toto' }) });
    expect(await asCaller(() => conn.invoke('math.add', { a: 2, b: 3 }))).toBe(5);
    await waitFor(() => named('math.add').length === 2);
    const client = named('math.add').find(s => s.kind === SpanKind.CLIENT)!;
    const server = named('math.add').find(s => s.kind === SpanKind.SERVER)!;
    expect(client.attributes['rpc.system']).toBe('toto');
    expect(server.spanContext().traceId).not.toBe(client.spanContext().traceId);
  });
});

describe('diagnostics_channel', () => {
  test('x:worker-rpc:call and x:worker-rpc:handle publish start and end', async () => {
    const seen: string[] = [];
    const subscribe = (name: string) => {
      const channel = tracingChannel<TraceMessage>(name);
      const handlers = {
        start: (m: TraceMessage) => seen.push(`${name} start ${m.name}`),
        end: () => {},
        asyncStart: () => {},
        asyncEnd: (m: TraceMessage) => seen.push(`${name} end ${m.name}`),
        error: () => {},
      };
      channel.subscribe(handlers);
      closers.push(async () => channel.unsubscribe(handlers));
    };
    subscribe('x:worker-rpc:call');
    subscribe('x:worker-rpc:handle');
    const worker = later(await startZmqWorker({ handlers: echoHandlers([]) }));
    const conn = await connect(worker.address);
    await conn.invoke('math.add', { a: 1, b: 1 });
    expect(seen).toEqual(
      expect.arrayContaining([
        'x:worker-rpc:call start math.add',
        'x:worker-rpc:call start attempt',
        'x:worker-rpc:handle start math.add',
        'x:worker-rpc:handle end math.add',
        'x:worker-rpc:call end attempt',
        'x:worker-rpc:call end math.add',
      ]),
    );
  });
});
