import { createWorker, createWorkerConnection, httpWorkerTransport } from '@x/worker-rpc';

interface Api {
  math: { add(p: { a: number; b: number }): number };
}

async function main(): Promise<void> {
  // Two workers on loopback, each on a free port (ZeroMQ: zmqWorkerTransport({ bind: 'tcp://127.0.0.1:0' })).
  const workers = await Promise.all(
    [1, 2].map(() =>
      createWorker<Api>({
        transport: httpWorkerTransport({ host: '127.0.0.1', port: 0 }),
        handlers: { math: { add: ({ a, b }) => a + b } }, // 2nd argument: ctx (deadline, signal, meta)
      }).start(),
    ),
  );
  const addresses = workers.flatMap(worker => worker.addresses);

  const conn = createWorkerConnection<Api>({ addresses }); // deadlines, retries, balancing
  const sums = await Promise.all(
    [1, 2, 3, 4].map(a => conn.proxy.math.add({ a, b: 10 }, { timeoutMs: 1_000 })),
  );
  console.log('sums:', sums); // [11, 12, 13, 14], typed number[]
  for (const worker of workers)
    console.log(`${worker.addresses[0]} served ${worker.status().completed}`);

  await conn.close();
  await Promise.all(workers.map(worker => worker.close()));
}

main().catch(error => {
  console.error(error);
  process.exitCode = 1;
});
