import { curveKeyPair } from 'zeromq';
import { afterEach, describe, expect, test } from 'vitest';
import { isWorkerRpcError } from './errors.js';
import { startZmqWorker } from './test/helpers.js';
import { createWorkerConnection } from './workerConnection.js';
import { zmqTransport } from './zmqTransport.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c().catch(() => {});
});

describe('ZeroMQ transport security', () => {
  test('CURVE: clients with the worker public key get through; plaintext or wrong-key clients never reach the handler', async () => {
    const server = curveKeyPair();
    let calls = 0;
    const worker = await startZmqWorker(
      { handlers: { secret: () => (calls++, 'classified') } },
      { curve: { secretKey: server.secretKey } },
    );
    cleanup.push(() => worker.close());
    const good = createWorkerConnection({
      addresses: worker.address,
      transport: zmqTransport({ curve: { serverKey: server.publicKey } }),
    });
    const plain = createWorkerConnection({ addresses: worker.address, timeoutMs: 300 });
    const wrong = createWorkerConnection({
      addresses: worker.address,
      timeoutMs: 300,
      transport: zmqTransport({ curve: { serverKey: curveKeyPair().publicKey } }),
    });
    cleanup.push(
      () => good.close(),
      () => plain.close(),
      () => wrong.close(),
    );
    expect(await good.invoke('secret')).toBe('classified');
    for (const conn of [plain, wrong]) {
      const error = await conn.invoke('secret').catch(e => e);
      // the handshake fails: the connection drops (UNAVAILABLE) or never completes (TIMEOUT)
      expect(isWorkerRpcError(error) && ['TIMEOUT', 'UNAVAILABLE'].includes(error.code)).toBe(true);
    }
    expect(calls).toBe(1);
  });

  test('batches: calls made together leave as one message and are all answered', async () => {
    const worker = await startZmqWorker({ handlers: { echo: (p: unknown) => p } });
    cleanup.push(() => worker.close());
    const conn = createWorkerConnection({ addresses: worker.address });
    cleanup.push(() => conn.close());
    const values = Array.from({ length: 500 }, (_, i) => ({ i, s: 'x'.repeat(i % 50) }));
    expect(await Promise.all(values.map(v => conn.invoke('echo', v)))).toEqual(values);
    expect(await Promise.all(values.map(() => conn.invoke('echo')))).toEqual(
      values.map(() => undefined),
    );
  });
});
