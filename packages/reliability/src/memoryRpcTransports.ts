import {
  Kind,
  type Channel,
  type IncomingRequest,
  type KindValue,
  type ReplyFrame,
  type ResponseInfo,
  type Transport,
  type WorkerSink,
  type WorkerTransport,
} from '@x/worker-rpc';

/** A reply the worker sent back through a {@link MemoryWorkerTransport}. */
export interface MemoryReply {
  readonly kind: KindValue;
  readonly body: Uint8Array | undefined;
  readonly info: ResponseInfo;
}

/** The fields of an {@link IncomingRequest}, without `respond`. */
export type RequestFields = Omit<IncomingRequest, 'respond'>;

/**
 * A worker transport without sockets: `request()` hands any request, however malformed, straight
 * to the worker (as a real transport does after framing) and resolves with its RES or ERR.
 */
export class MemoryWorkerTransport implements WorkerTransport {
  readonly name = 'memory';
  readonly addresses = ['memory://worker'];
  private sink: WorkerSink | undefined;

  async start(sink: WorkerSink): Promise<void> {
    this.sink = sink;
  }

  drain(): void {}

  async close(): Promise<void> {
    this.sink = undefined;
  }

  /** Delivers `fields` to the worker; resolves with its result or error reply (ACKs are skipped). */
  request(fields: RequestFields): Promise<MemoryReply> {
    const sink = this.sink;
    if (!sink) return Promise.reject(new Error('MemoryWorkerTransport is not started'));
    return new Promise(resolve =>
      sink.request({
        ...fields,
        respond: (kind, body, info) => {
          if (kind !== Kind.ACK) resolve({ kind, body, info });
        },
      }),
    );
  }
}

/**
 * A client transport without sockets: every request sent is answered with the frames that
 * `reply()` returns for it, on the next microtask (the channel is up at once).
 */
export function memoryClientTransport(reply: () => readonly ReplyFrame[]): Transport {
  return {
    name: 'memory',
    protocol: 'wrpc/1',
    open(address, events) {
      const channel: Channel = {
        address,
        send(request) {
          const frames = reply();
          queueMicrotask(() => {
            for (const frame of frames) events.reply(channel, request.id, frame);
          });
          return undefined;
        },
        cancel() {},
        close: async () => {},
      };
      queueMicrotask(() => events.state(channel, 'up'));
      return channel;
    },
    close: async () => {},
  };
}
