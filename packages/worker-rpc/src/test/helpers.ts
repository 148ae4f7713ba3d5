import { join } from 'node:path';
import { startNodeProcess, type NodeProcess } from '@x/testkit';
import { FIXTURE_OUT } from './globalSetup.js';

/** Starts a bundled fixture (see globalSetup) as a real child process; resolves once it prints READY. */
export async function startFixture(
  name: string,
  args: string[] = [],
): Promise<NodeProcess & { address: string }> {
  const proc = await startNodeProcess(join(FIXTURE_OUT, `${name}.mjs`), {
    args,
    readyPattern: /^READY (\S+)/,
    timeoutMs: 15_000,
  });
  return Object.assign(proc, { address: proc.match![1]! });
}

/** Resolves after `ms`. */
export const delay = (ms: number) => new Promise<void>(resolve => setTimeout(resolve, ms));

/** Number of active timers in this process (`setTimeout`/`setInterval` handles). */
export function activeTimers(): number {
  return process.getActiveResourcesInfo().filter(r => r === 'Timeout').length;
}

import { createWorker, type Worker, type WorkerOptions } from '../worker.js';
import { zmqWorkerTransport, type ZmqWorkerTransportOptions } from '../zmqWorkerTransport.js';
import { httpWorkerTransport, type HttpWorkerTransportOptions } from '../httpWorkerTransport.js';

/** Starts an in-process worker on a ZeroMQ ROUTER bound to a free loopback port. */
export async function startZmqWorker(
  options: Omit<WorkerOptions<any>, 'transport'>,
  transport: Omit<ZmqWorkerTransportOptions, 'bind'> & { bind?: string } = {},
): Promise<Worker<any> & { address: string }> {
  const worker = createWorker({
    ...options,
    transport: zmqWorkerTransport({ bind: 'tcp://127.0.0.1:0', ...transport }),
  });
  await worker.start();
  return Object.assign(worker, { address: worker.addresses[0]! });
}

/** Starts an in-process worker on an HTTP server bound to a free loopback port. */
export async function startHttpWorker(
  options: Omit<WorkerOptions<any>, 'transport'>,
  transport: HttpWorkerTransportOptions = {},
): Promise<Worker<any> & { address: string }> {
  const worker = createWorker({ ...options, transport: httpWorkerTransport(transport) });
  await worker.start();
  return Object.assign(worker, { address: worker.addresses[0]! });
}
