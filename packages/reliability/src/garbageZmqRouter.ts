import { randomBytes } from 'node:crypto';
import { Router } from 'zeromq';

/** A ZeroMQ ROUTER on loopback that answers every message with random frames. */
export interface GarbageZmqRouter {
  /** `tcp://127.0.0.1:<port>`. */
  readonly address: string;
  /** Messages it answered. */
  readonly answered: number;
  close(): Promise<void>;
}

/**
 * Starts a "worker" that speaks garbage: each message gets its routing envelope back, then one to
 * three frames of random bytes (sometimes a header-sized one starting with the protocol version).
 */
export async function startGarbageZmqRouter(): Promise<GarbageZmqRouter> {
  const socket = new Router({ linger: 0 });
  await socket.bind('tcp://127.0.0.1:*');
  let answered = 0;
  const loop = (async () => {
    for await (const [identity] of socket) {
      const frames = Array.from({ length: 1 + (answered % 3) }, (_, i) => {
        const bytes = randomBytes(i === 0 ? 28 + (answered % 40) : answered % 64);
        if (i === 0 && answered % 2 === 0) bytes[0] = 1; // looks like a wrpc/1 header at first
        return bytes;
      });
      answered++;
      await socket.send([identity!, Buffer.alloc(0), ...frames]);
    }
  })().catch(() => {}); // ends when the socket closes
  return {
    address: socket.lastEndpoint!,
    get answered() {
      return answered;
    },
    close: async () => {
      socket.close();
      await loop;
    },
  };
}
