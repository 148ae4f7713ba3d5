import type { UntypedApi } from './api.js';
import { createBroker, type Broker, type BrokerOptions } from './broker.js';
import { createQueueDevice, type QueueDevice } from './queueDevice.js';
import { createWorker, type Worker, type WorkerOptions } from './worker.js';
import { zmqWorkerTransport, type ZmqWorkerTransportOptions } from './zmqWorkerTransport.js';

/** Options of {@link createWorkerService}: worker options plus toto's deployment settings. */
export interface WorkerServiceOptions<Api = UntypedApi> extends Omit<
  WorkerOptions<Api>,
  'transport'
> {
  /**
   * Where clients connect (toto's `worker_bind_address`). Default `tcp://*:55555`. An empty string
   * runs **workers only**, connecting to `backend` (a router elsewhere).
   */
  readonly frontend?: string;
  /** Router ↔ workers address (toto's `worker_socket_address`). Default `ipc:///tmp/workerservice.sock`. */
  readonly backend?: string;
  /** `broker` (default: credit-based, no head-of-line blocking) or `queue` (toto's QUEUE device). */
  readonly router?: 'broker' | 'queue';
  /** In-process workers (toto's `processes`); 0 runs the **router only**. Default 1. */
  readonly workers?: number;
  /** Options of the worker sockets (heartbeats, CURVE, ...). */
  readonly workerTransport?: Omit<ZmqWorkerTransportOptions, 'bind' | 'connect'>;
  /** Options of the broker (queue size, heartbeats, ...). */
  readonly broker?: Omit<BrokerOptions, 'frontend' | 'backend'>;
}

/** A running worker service: its router (unless workers-only) and its workers. */
export interface WorkerService<Api = UntypedApi> {
  readonly router: Broker | QueueDevice | undefined;
  readonly workers: readonly Worker<Api>[];
  /** Drains the workers (toto's `shutdown` command), then closes everything. */
  close(options?: { drainMs?: number }): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * toto's `TotoWorkerService` deployment modes in one call: router plus workers (default), router
 * only (`workers: 0`, several machines share it), or workers only (`frontend: ''`, connecting to a
 * router's `backend`). Workers in other processes join with
 * `createWorker({ transport: zmqWorkerTransport({ connect: backend }) })`.
 */
export async function createWorkerService<Api = UntypedApi>(
  options: WorkerServiceOptions<Api>,
): Promise<WorkerService<Api>> {
  const {
    frontend = 'tcp://*:55555',
    backend = 'ipc:///tmp/workerservice.sock',
    router = 'broker',
    workers: count = 1,
    workerTransport,
    broker,
    ...workerOptions
  } = options;
  if (!(Number.isInteger(count) && count >= 0))
    throw new RangeError('workers must be an integer >= 0');
  if (frontend === '' && count === 0)
    throw new RangeError('a service with no frontend and no workers does nothing');
  let routerInstance: Broker | QueueDevice | undefined;
  if (frontend !== '') {
    routerInstance =
      router === 'queue'
        ? createQueueDevice({ frontend, backend })
        : createBroker({ ...broker, frontend, backend });
    await routerInstance.start();
  }
  const backendAddress = routerInstance?.backendAddresses[0] ?? backend;
  const workers: Worker<Api>[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const worker = createWorker<Api>({
        ...(workerOptions as Omit<WorkerOptions<Api>, 'transport'>),
        transport: zmqWorkerTransport({ ...workerTransport, connect: backendAddress }),
      } as WorkerOptions<Api>);
      await worker.start();
      workers.push(worker);
    }
  } catch (error) {
    await Promise.all(workers.map(w => w.close()));
    await routerInstance?.close();
    throw error;
  }
  const close = async (closeOptions: { drainMs?: number } = {}) => {
    await Promise.all(workers.map(w => w.close({ drainMs: closeOptions.drainMs ?? 0 })));
    await routerInstance?.close();
  };
  return { router: routerInstance, workers, close, [Symbol.asyncDispose]: () => close() };
}
