// The seam for a fleet's shared breaker state: two orders clients (two replicas' worth) given one
// `BreakerStore` adopt each other's open circuit. Here the store is @x/resilience's in-memory one
// (both clients in this process); across processes it is a Redis store (docs/SCALING.md).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createDispatcher, remote, type Dispatcher } from '@x/dispatcher';
import { memoryBreakerStore, noopMetrics, silentLogger } from '@x/resilience';
import { waitFor } from '@x/testkit';
import { afterAll, expect, it } from 'vitest';
import { createOrdersClient, type OrdersClient } from './ordersClient.js';

let failing = false;
const server: Server = createServer((_req, res) => {
  res.writeHead(failing ? 500 : 200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ id: '1', status: 'shipped' }));
});
const clients: OrdersClient[] = [];
let dispatcher: Dispatcher | undefined;
afterAll(async () => {
  await Promise.all(clients.map(c => c.close()));
  await dispatcher?.close();
  await new Promise(resolve => server.close(resolve));
});

const config = {
  timeoutMs: 2_000,
  retries: 0,
  circuitOpenAfter: 2,
  circuitResetMs: 60_000,
  maxOpenPerHost: 8,
  expectedMs: 1_000,
};
const circuit = (client: OrdersClient) => client.stats().circuits[0]?.state;

it('replicas sharing a BreakerStore adopt an open circuit', async () => {
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // a real dispatcher whose orders/v1 is the server above: the clients reach it in process
  dispatcher = createDispatcher({
    modules: { orders: { versions: { v1: { backend: remote([url]) } } } },
  });
  await dispatcher.start();
  const store = memoryBreakerStore();
  const deps = { metrics: noopMetrics, logger: silentLogger, dispatcher, breakerStore: store };
  const a = createOrdersClient(config, deps);
  const b = createOrdersClient(config, deps);
  const alone = createOrdersClient(config, { ...deps, breakerStore: undefined });
  clients.push(a, b, alone);
  for (const client of [a, b, alone])
    expect(await client.run({}, '1', {})).toMatchObject({ source: 'live' });
  failing = true;
  for (let i = 0; i < 2; i++)
    expect(await a.run({}, '1', {})).toMatchObject({ source: 'fallback' });
  expect(circuit(a)).toBe('open');
  await waitFor(() => circuit(b) === 'open', { timeoutMs: 1_000 });
  expect(circuit(alone)).toBe('closed'); // without the store: its own state only
  failing = false;
  expect(await b.run({}, '1', {})).toMatchObject({ source: 'fallback', reason: 'CIRCUIT_OPEN' });
});
