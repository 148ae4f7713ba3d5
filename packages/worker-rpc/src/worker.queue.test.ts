// The worker's handler slots and wait queue (a resilience Bulkhead) with an in-memory transport.
import { ManualClock } from '@x/resilience';
import { describe, expect, test } from 'vitest';
import { Kind, type KindValue } from './protocol.js';
import { createWorker, type HandlerContext } from './worker.js';
import type {
  IncomingRequest,
  ResponseInfo,
  WorkerSink,
  WorkerTransport,
} from './workerTransport.js';

function memoryTransport() {
  let sink: WorkerSink | undefined;
  const replies: { id: number; kind: KindValue; body: string; info: ResponseInfo }[] = [];
  const transport: WorkerTransport = {
    name: 'memory',
    addresses: [],
    start: async s => {
      sink = s;
    },
    drain() {},
    close: async () => {},
  };
  const send = (n: number, method: string, budgetMs = -1) => {
    const id = new Uint8Array(16);
    id[15] = n;
    const request: IncomingRequest = {
      id,
      method,
      attempt: 0,
      budgetMs,
      idempotent: false,
      key: '',
      meta: undefined,
      ack: false,
      codec: '',
      encoding: '',
      compressed: false,
      body: Buffer.from(JSON.stringify(n)),
      toto: false,
      wrapErrors: false,
      respond: (kind, body, info) =>
        replies.push({ id: n, kind, body: body ? Buffer.from(body).toString() : '', info }),
    };
    sink!.request(request);
    return id;
  };
  return { transport, replies, send, cancel: (id: Uint8Array) => sink!.cancel(id) };
}

const tick = () => new Promise(r => setImmediate(r));

describe('worker slots and queue', () => {
  test('FIFO admission, OVERLOADED beyond the queue, CANCEL frees a queued place, spent budgets never start', async () => {
    const clock = new ManualClock();
    const { transport, replies, send, cancel } = memoryTransport();
    const release: (() => void)[] = [];
    const started: number[] = [];
    const worker = await createWorker({
      transport,
      clock,
      concurrency: 1,
      queue: 2,
      handlers: {
        hold: (n: number) =>
          new Promise<number>(resolve => {
            started.push(n);
            release.push(() => resolve(n));
          }),
      },
    }).start();
    send(1, 'hold');
    send(2, 'hold');
    const third = send(3, 'hold', 50);
    send(4, 'hold'); // queue full
    expect(worker.status()).toMatchObject({ active: 1, queued: 2, credit: 0 });
    expect(replies.map(r => [r.id, r.kind])).toEqual([[4, Kind.ERR]]);
    expect(JSON.parse(replies[0]!.body).code).toBe('OVERLOADED');

    cancel(third); // leaves the queue at once
    expect(worker.status().queued).toBe(1);
    send(5, 'hold', 50); // takes the freed place; its budget runs out while it waits
    await clock.advance(60);
    release.shift()!(); // 1 ends: 2 starts (FIFO)
    await tick();
    expect(started).toEqual([1, 2]);
    release.shift()!(); // 2 ends: 5's budget is spent, so it is answered without starting
    await tick();
    expect(started).toEqual([1, 2]);
    const byId = new Map(replies.map(r => [r.id, r]));
    expect(byId.get(1)!.body).toBe('1');
    expect(JSON.parse(byId.get(3)!.body).code).toBe('CANCELLED');
    expect(JSON.parse(byId.get(5)!.body).code).toBe('DEADLINE_EXCEEDED');
    expect(worker.status()).toMatchObject({ active: 0, queued: 0, credit: 1 });
    expect(worker.pending).toBe(0);
    await worker.close();
  });

  test('a request that waited in the queue still gets its deadline on ctx.signal', async () => {
    const clock = new ManualClock();
    const { transport, replies, send } = memoryTransport();
    let release: (() => void) | undefined;
    const worker = await createWorker({
      transport,
      clock,
      concurrency: 1,
      queue: 1,
      handlers: {
        hold: () => new Promise<void>(resolve => (release = resolve)),
        watch: (_: unknown, ctx: HandlerContext) =>
          new Promise((_resolve, reject) =>
            ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)),
          ),
      },
    }).start();
    send(1, 'hold');
    send(2, 'watch', 200);
    expect(worker.status().queued).toBe(1);
    await clock.advance(50);
    release!();
    await tick();
    expect(worker.status().active).toBe(1); // watch runs with 150 ms left
    await clock.advance(150);
    await tick();
    const reply = replies.find(r => r.id === 2)!;
    expect(JSON.parse(reply.body).code).toBe('DEADLINE_EXCEEDED');
    await worker.close();
  });
});
