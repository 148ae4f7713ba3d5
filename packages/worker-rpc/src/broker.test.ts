import { freePort, waitFor } from '@x/testkit';
import { afterEach, describe, expect, test } from 'vitest';
import { createBroker, type Broker } from './broker.js';
import { isWorkerRpcError, type WorkerRpcError } from './errors.js';
import { createQueueDevice } from './queueDevice.js';
import { delay, startFixture } from './test/helpers.js';
import { createWorker, type HandlerContext, type Worker } from './worker.js';
import { createWorkerConnection } from './workerConnection.js';
import { createWorkerService } from './workerService.js';
import { zmqWorkerTransport } from './zmqWorkerTransport.js';

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
    if (isWorkerRpcError(error)) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}
const tcp = async () => `tcp://127.0.0.1:${await freePort()}`;

async function startBroker(
  options: Partial<Parameters<typeof createBroker>[0]> = {},
): Promise<Broker> {
  return later(
    await createBroker({
      frontend: await tcp(),
      backend: await tcp(),
      heartbeatIntervalMs: 200,
      workerTimeoutMs: 800,
      ...options,
    }).start(),
  );
}

async function connectWorker(
  backend: string,
  name: string,
  handlers: Record<string, (p: any, ctx: HandlerContext) => unknown>,
  concurrency = 1,
): Promise<Worker> {
  const worker = createWorker({
    concurrency,
    handlers: { ...handlers, who: () => name },
    transport: zmqWorkerTransport({ connect: backend, announceIntervalMs: 200 }),
  });
  await worker.start();
  return later(worker);
}

/** Fires one stuck call, then 20 fast ones; returns how long each fast call took. */
async function fastBehindSlow(frontend: string, ready: () => boolean): Promise<number[]> {
  const conn = later(createWorkerConnection({ addresses: frontend, timeoutMs: 5_000 }));
  await waitFor(ready, { timeoutMs: 5_000 });
  const slow = conn.invoke('slow');
  await delay(100);
  const times = await Promise.all(
    Array.from({ length: 20 }, async () => {
      const started = Date.now();
      await conn.invoke('fast');
      return Date.now() - started;
    }),
  );
  await slow;
  return times;
}

describe('load-balancing broker', () => {
  test('keeps fast calls flowing while one worker is stuck (toto’s QUEUE device does not)', async () => {
    const handlers = { slow: () => delay(1_000).then(() => 'slow'), fast: () => 'fast' };
    const broker = await startBroker();
    await connectWorker(broker.backendAddresses[0]!, 'a', handlers);
    await connectWorker(broker.backendAddresses[0]!, 'b', handlers);
    const viaBroker = await fastBehindSlow(
      broker.frontendAddresses[0]!,
      () => broker.status().workers.length === 2,
    );
    expect(Math.max(...viaBroker)).toBeLessThan(600);

    const device = later(
      await createQueueDevice({ frontend: await tcp(), backend: await tcp() }).start(),
    );
    const w1 = await connectWorker(device.backendAddresses[0]!, 'a', handlers);
    const w2 = await connectWorker(device.backendAddresses[0]!, 'b', handlers);
    const viaDevice = await fastBehindSlow(
      device.frontendAddresses[0]!,
      () => w1.status().state === 'running' && w2.status().state === 'running',
    );
    // round-robin parks about half of the fast calls behind the stuck one (head-of-line blocking)
    expect(Math.max(...viaDevice)).toBeGreaterThan(600);
  });

  test('a lost worker fails its calls with UNAVAILABLE; an idempotent retry reaches another worker', async () => {
    const broker = await startBroker();
    const child = later(
      await startFixture('worker', [
        '--connect',
        broker.backendAddresses[0]!,
        '--name',
        'doomed',
        '--concurrency',
        '2',
      ]),
    );
    await waitFor(() => broker.status().workers.length === 1);
    const plain = later(
      createWorkerConnection({ addresses: broker.frontendAddresses[0]!, timeoutMs: 5_000 }),
    );
    const retrying = later(
      createWorkerConnection({
        addresses: broker.frontendAddresses[0]!,
        timeoutMs: 5_000,
        retry: { maxAttempts: 3 },
        methods: { slow: { idempotent: true } },
      }),
    );
    // both calls run on the doomed worker
    const lost = rejection(plain.invoke('slow', { ms: 10_000 }));
    const saved = retrying.invoke('slow', { ms: 10_000 });
    await waitFor(() => broker.status().inFlight === 2);
    await connectWorker(broker.backendAddresses[0]!, 'survivor', {
      slow: (p: { ms: number }) => ({ name: 'survivor', ms: p.ms }),
    });
    await waitFor(() => broker.status().workers.length === 2);
    await child.kill('SIGKILL');
    const error = await lost;
    expect(error.code).toBe('UNAVAILABLE');
    expect(error.retryable).toBe(true);
    expect(await saved).toEqual({ name: 'survivor', ms: 10_000 });
    await waitFor(() => broker.status().workers.length === 1);
  });

  test('queue: bounded (OVERLOADED), budgets expire (never started), CANCEL while queued, budget shrinks by the wait', async () => {
    const broker = await startBroker({ maxQueue: 2 });
    const conn = later(
      createWorkerConnection({ addresses: broker.frontendAddresses[0]!, timeoutMs: 5_000 }),
    );
    await waitFor(() => conn.endpoints()[0]!.state === 'up');
    const started: string[] = [];
    // no worker yet: calls wait in the broker
    const expiring = rejection(conn.invoke('job', { id: 'expiring' }, { timeoutMs: 300 }));
    const controller = new AbortController();
    const cancelled = rejection(
      conn.invoke('job', { id: 'cancelled' }, { signal: controller.signal }),
    );
    await waitFor(() => broker.status().queued === 2);
    // this client respects the credit the broker advertised (0 left) and waits locally; another one
    // that has nothing in flight may probe, and the broker's bound answers
    const other = later(
      createWorkerConnection({ addresses: broker.frontendAddresses[0]!, timeoutMs: 5_000 }),
    );
    expect((await rejection(other.invoke('job', { id: 'overflow' }))).code).toBe('OVERLOADED');
    controller.abort();
    expect((await cancelled).code).toBe('CANCELLED');
    expect((await expiring).code).toBe('TIMEOUT');
    await waitFor(() => broker.status().queued === 0, { timeoutMs: 2_000 });
    let budget = 0;
    const worker = await connectWorker(broker.backendAddresses[0]!, 'w', {
      job: async (p: { id: string; ms?: number }, ctx: HandlerContext) => {
        started.push(p.id);
        budget = ctx.remainingMs();
        await delay(p.ms ?? 0);
        return p.id;
      },
    });
    await waitFor(() => broker.status().workers.length === 1);
    const busy = conn.invoke('job', { id: 'busy', ms: 300 });
    await waitFor(() => started.includes('busy'));
    const queued = conn.invoke('job', { id: 'queued' }, { timeoutMs: 2_000 });
    expect(await busy).toBe('busy');
    expect(await queued).toBe('queued');
    expect(budget).toBeLessThan(1_800);
    expect(started).toEqual(['busy', 'queued']);
    expect(worker.status().completed).toBe(2);
  });

  test('CANCEL is forwarded to the worker running the call', async () => {
    const broker = await startBroker();
    let aborted: unknown;
    await connectWorker(broker.backendAddresses[0]!, 'w', {
      hang: (_p: unknown, ctx: HandlerContext) =>
        new Promise((_r, reject) =>
          ctx.signal.addEventListener('abort', () => reject((aborted = ctx.signal.reason))),
        ),
    });
    await waitFor(() => broker.status().workers.length === 1);
    const conn = later(createWorkerConnection({ addresses: broker.frontendAddresses[0]! }));
    const controller = new AbortController();
    const call = conn.invoke('hang', {}, { signal: controller.signal });
    await waitFor(() => broker.status().inFlight === 1);
    controller.abort();
    expect((await rejection(call)).code).toBe('CANCELLED');
    await waitFor(() => aborted !== undefined);
    expect(isWorkerRpcError(aborted, 'CANCELLED')).toBe(true);
    await waitFor(() => broker.status().inFlight === 0);
  });
});

describe('worker service deployment modes (toto TotoWorkerService)', () => {
  test('router + workers, router only, workers only, queue router', async () => {
    const handlers = { math: { add: (p: { a: number; b: number }) => p.a + p.b } };
    const both = await createWorkerService({
      handlers,
      frontend: await tcp(),
      backend: await tcp(),
      workers: 2,
    });
    cleanup.push(() => both.close());
    expect(both.workers).toHaveLength(2);
    const conn = later(
      createWorkerConnection({ addresses: (both.router as Broker).frontendAddresses[0]! }),
    );
    expect(await conn.invoke('math.add', { a: 1, b: 2 })).toBe(3);

    const routerOnly = await createWorkerService({
      handlers,
      frontend: await tcp(),
      backend: await tcp(),
      workers: 0,
    });
    cleanup.push(() => routerOnly.close());
    expect(routerOnly.workers).toHaveLength(0);
    const workersOnly = await createWorkerService({
      handlers,
      frontend: '',
      backend: (routerOnly.router as Broker).backendAddresses[0]!,
      workers: 1,
    });
    cleanup.push(() => workersOnly.close());
    expect(workersOnly.router).toBeUndefined();
    const conn2 = later(
      createWorkerConnection({ addresses: (routerOnly.router as Broker).frontendAddresses[0]! }),
    );
    expect(await conn2.invoke('math.add', { a: 2, b: 2 })).toBe(4);

    const queue = await createWorkerService({
      handlers,
      frontend: await tcp(),
      backend: await tcp(),
      router: 'queue',
    });
    cleanup.push(() => queue.close());
    const conn3 = later(
      createWorkerConnection({
        addresses: (queue.router as { frontendAddresses: string[] }).frontendAddresses[0]!,
      }),
    );
    expect(await conn3.invoke('math.add', { a: 3, b: 2 })).toBe(5);
    await expect(createWorkerService({ handlers, frontend: '', workers: 0 })).rejects.toThrow(
      RangeError,
    );
  });
});
