import { timerOptions } from './internal/durationOption.js';
import { validateAddress } from './validateAddress.js';
import { loadZmq, type Zmq } from './internal/loadZmq.js';

/** Options of {@link createQueueDevice}. */
export interface QueueDeviceOptions {
  /** Addresses of the client-facing ROUTER (toto's `worker_bind_address`, default there `tcp://*:55555`). */
  readonly frontend: string | readonly string[];
  /** Addresses of the worker-facing DEALER (toto's `worker_socket_address`, default there `ipc:///tmp/workerservice.sock`). */
  readonly backend: string | readonly string[];
  readonly lingerMs?: number;
}

function list(value: string | readonly string[]): string[] {
  return (typeof value === 'string' ? value.split(',') : [...value])
    .map(s => s.trim())
    .filter(Boolean);
}

/**
 * toto's router: a ZeroMQ QUEUE device (`ProcessDevice(zmq.QUEUE, zmq.ROUTER, zmq.DEALER)`),
 * built on zeromq.js `Proxy`, whose loop runs on a libzmq thread (no JS event-loop time). Frames
 * pass through untouched, so it carries wrpc/1 and toto frames alike, and toto REP workers as well
 * as ours can connect to the backend. Like toto's, it round-robins to workers whether they are
 * busy or not (head-of-line blocking): prefer {@link createBroker} unless you need toto's device.
 */
export class QueueDevice {
  frontendAddresses: string[] = [];
  backendAddresses: string[] = [];
  private proxy: InstanceType<Zmq['Proxy']> | undefined;
  private running: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly options: QueueDeviceOptions) {
    if (list(options.frontend).length === 0 || list(options.backend).length === 0)
      throw new TypeError('queue device needs frontend and backend addresses');
    for (const a of list(options.frontend)) validateAddress(a, 'zmq-bind', 'frontend');
    for (const a of list(options.backend)) validateAddress(a, 'zmq-bind', 'backend');
    timerOptions(options, ['lingerMs']);
  }

  /** Binds both sockets and starts the device. */
  async start(): Promise<this> {
    const zmq = await loadZmq();
    const linger = this.options.lingerMs ?? 0;
    const frontend = new zmq.Router({ linger, routingId: 'ROUTER' });
    const backend = new zmq.Dealer({ linger, routingId: 'DEALER' });
    for (const a of list(this.options.frontend)) {
      await frontend.bind(a);
      this.frontendAddresses.push(frontend.lastEndpoint ?? a);
    }
    for (const a of list(this.options.backend)) {
      await backend.bind(a);
      this.backendAddresses.push(backend.lastEndpoint ?? a);
    }
    this.proxy = new zmq.Proxy(frontend, backend);
    this.running = this.proxy.run().catch(() => {});
    return this;
  }

  /** Stops the device and closes its sockets. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.proxy) {
      try {
        this.proxy.terminate();
      } catch {
        // already terminated
      }
      await this.running;
      if (!this.proxy.frontEnd.closed) this.proxy.frontEnd.close();
      if (!this.proxy.backEnd.closed) this.proxy.backEnd.close();
    }
  }

  /** Same as `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Creates a toto-compatible {@link QueueDevice}; call `start()` to bind. */
export function createQueueDevice(options: QueueDeviceOptions): QueueDevice {
  return new QueueDevice(options);
}
