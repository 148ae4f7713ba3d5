import { Runner, httpEntrypoint, json, memoryQueue, route, schema, syncBackoff } from '@x/routes';

interface Order {
  id: string;
  amount: number;
}
const isOrder = (value: unknown): value is Order =>
  typeof (value as Order)?.id === 'string' && typeof (value as Order)?.amount === 'number';

// A payment service stand-in that fails the first attempt of every order.
const attempts = new Map<string, number>();
async function charge(order: Order, _signal: AbortSignal) {
  const n = (attempts.get(order.id) ?? 0) + 1;
  attempts.set(order.id, n);
  if (n === 1) throw new Error(`payment service busy (order ${order.id})`);
  return { orderId: order.id, charged: order.amount, attempts: n };
}

async function main(): Promise<void> {
  const http = httpEntrypoint({ path: '/orders', port: 0 }); // POST on 127.0.0.1, a free port
  const queue = memoryQueue<unknown>({ name: 'orders' });
  const orders = route({
    entrypoint: [http, queue], // one policy, two transports
    translators: [json(), schema(isOrder)], // or a zod / valibot schema
    target: async (order, ctx) => charge(order, ctx.signal),
    backoff: syncBackoff({ maxRetries: 3, delay: 10 }),
    callbacks: { onFailure: ({ error }) => console.log('onFailure:', String(error)) },
  });
  const runner = new Runner({ routes: [orders], maxWorkers: 4 });
  await runner.start();

  for (const body of ['{"id":"a1","amount":42}', '{"id":"a2"}']) {
    const res = await fetch(`${http.url}/orders`, { method: 'POST', body });
    console.log(res.status, await res.text()); // 200 after one retry; 400 for the bad order
  }
  queue.publish(Buffer.from('{"id":"q1","amount":7}'));
  await queue.idle();
  console.log(
    'queue: processed',
    attempts.get('q1'),
    'attempts, dead letters:',
    queue.deadLetters.size,
  );

  console.log(await runner.stop({ timeoutMs: 5_000 })); // drain report
}

main().catch(error => {
  console.error(error);
  process.exitCode = 1;
});
