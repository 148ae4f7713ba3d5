// Echo servers for bench/echo.mjs, in their own process: raw zeromq ROUTER, our ZeroMQ worker, our
// HTTP worker, and a Moleculer node with the TCP transporter. Prints "READY <json>" when all listen.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import zmq from 'zeromq';
import { ServiceBroker } from 'moleculer';
import { createWorker, httpWorkerTransport, zmqWorkerTransport } from '../dist/index.js';

const { values } = parseArgs({
  options: {
    'moleculer-server': { type: 'string' },
    'moleculer-client': { type: 'string' },
    baseline: { type: 'string' },
  },
});

// 1. raw floor: a ROUTER that echoes every message as it came (one receive loop, one pending send)
const router = new zmq.Router({
  linger: 0,
  sendHighWaterMark: 100_000,
  receiveHighWaterMark: 100_000,
});
await router.bind('tcp://127.0.0.1:0');
void (async () => {
  for await (const frames of router) await router.send(frames);
})();

// 2. and 3. our workers
const handlers = { bench: { echo: p => p } };
const zmqWorker = createWorker({
  transport: zmqWorkerTransport({ bind: 'tcp://127.0.0.1:0' }),
  handlers,
  concurrency: 256,
});
await zmqWorker.start();
const httpWorker = createWorker({
  transport: httpWorkerTransport({ port: 0 }),
  handlers,
  concurrency: 256,
});
await httpWorker.start();

// 3b. with --baseline <dist folder>: the same ZeroMQ worker from another build (A/B in one run)
let baseWorker;
if (values.baseline) {
  const base = await import(pathToFileURL(join(values.baseline, 'index.js')).href);
  baseWorker = base.createWorker({
    transport: base.zmqWorkerTransport({ bind: 'tcp://127.0.0.1:0' }),
    handlers,
    concurrency: 256,
  });
  await baseWorker.start();
}

// 4. Moleculer with its TCP transporter, static addresses, no UDP discovery
const urls = [
  `127.0.0.1:${values['moleculer-server']}/bench-server`,
  `127.0.0.1:${values['moleculer-client']}/bench-client`,
];
const broker = new ServiceBroker({
  nodeID: 'bench-server',
  logger: false,
  transporter: {
    type: 'TCP',
    options: { udpDiscovery: false, urls, port: Number(values['moleculer-server']) },
  },
});
broker.createService({ name: 'bench', actions: { echo: ctx => ctx.params } });
await broker.start();

process.stdout.write(
  `READY ${JSON.stringify({ raw: router.lastEndpoint, zmq: zmqWorker.addresses[0], http: httpWorker.addresses[0], base: baseWorker?.addresses[0], moleculerUrls: urls })}\n`,
);
const stop = async () => {
  await Promise.allSettled([
    zmqWorker.close(),
    httpWorker.close(),
    baseWorker?.close(),
    broker.stop(),
  ]);
  router.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
