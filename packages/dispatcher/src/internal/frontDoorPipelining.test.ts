import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inProcess } from '../backends/inProcess.js';
import { remote } from '../backends/remote.js';
import { createDispatcher, type Dispatcher, type HttpFrontDoor } from '../createDispatcher.js';
import { InvalidConfigError } from '../errors.js';

/**
 * The front door's pipelining gate (`maxPipelinedRequests`, `PipelineGate` of `@x/resilience`)
 * with a real node:http instance behind `remote()` (the proxy path) and an in-process module.
 */
describe('HTTP front door: pipelined requests (maxPipelinedRequests)', () => {
  let upstream: Server;
  let dispatcher: Dispatcher;
  let door: HttpFrontDoor;
  const sockets: Socket[] = [];
  /** Requests the upstream is answering now, per path prefix, and the most seen at once. */
  const active = { flood: 0, order: 0, maxOrder: 0, floodSeen: 0, local: 0, maxLocal: 0 };

  beforeAll(async () => {
    upstream = createServer((req, res) => {
      const url = req.url ?? '/';
      if (url.startsWith('/flood/')) {
        active.floodSeen++;
        // slow: without the gate, the flood holds every slot and queue place for a while
        setTimeout(() => res.end('flood'), 300);
        return;
      }
      if (url.startsWith('/order/')) {
        active.order++;
        active.maxOrder = Math.max(active.maxOrder, active.order);
        res.on('close', () => active.order--);
        // a streamed body in a few chunks: the answer counts until its last byte is written
        // (a content-length keeps chunk framing out of the bytes the test matches)
        res.writeHead(200, {
          'content-type': 'text/plain',
          'content-length': String(url.length + 1 + 16 * 1024 + 1),
        });
        res.write(`${url}:`);
        setTimeout(() => {
          res.write('x'.repeat(16 * 1024));
          setTimeout(() => res.end(';'), 2);
        }, 2);
        return;
      }
      if (url.startsWith('/big/')) {
        res.end('z'.repeat(4 * 1024 * 1024));
        return;
      }
      res.end('ok');
    });
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    const origin = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    dispatcher = createDispatcher({
      modules: {
        default: {
          versions: {
            v1: {
              backend: remote([origin]),
              maxConcurrentRequests: 4,
              maxQueuedRequests: 16,
              maxPendingLatencyMs: 20_000,
            },
          },
        },
        local: {
          versions: {
            v1: {
              backend: inProcess(async req => {
                active.local++;
                active.maxLocal = Math.max(active.maxLocal, active.local);
                await new Promise(r => setTimeout(r, 2));
                active.local--;
                return { body: `${req.url}:` + 'y'.repeat(8 * 1024) + ';' };
              }),
              maxConcurrentRequests: 50,
            },
          },
        },
      },
      rules: [{ url: '*/local/*', module: 'local' }],
    });
    door = await dispatcher.listen({ maxPipelinedRequests: 3, requestTimeoutMs: 20_000 });
    // instances up before any timing matters
    expect((await fetch(`${door.url}/warm`)).status).toBe(200);
    expect((await fetch(`${door.url}/local/warm`)).status).toBe(200);
  });

  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await door?.close();
    await dispatcher?.close({ drainTimeoutMs: 500 });
    upstream?.closeAllConnections();
    upstream?.close();
  });

  /** A raw connection that writes `paths` as pipelined GETs in one write. */
  async function pipeline(paths: string[]): Promise<Socket> {
    const socket = connect(door.port, '127.0.0.1');
    sockets.push(socket);
    socket.on('error', () => {}); // the gate resets a flooding connection
    await once(socket, 'connect');
    socket.write(paths.map(p => `GET ${p} HTTP/1.1\r\nHost: example.com\r\n\r\n`).join(''));
    return socket;
  }

  /** Reads `socket` until `count` answers whose bodies start with `prefix` arrived; their ids in order. */
  async function answers(socket: Socket, prefix: string, count: number): Promise<string[]> {
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (text += chunk));
    const pattern = new RegExp(`(${prefix.replace(/\//g, '\\/')}\\d+):[xy]+;`, 'g');
    const ids = () => [...text.matchAll(pattern)].map(m => m[1]!);
    const deadline = Date.now() + 60_000;
    while (ids().length < count && Date.now() < deadline && !socket.destroyed)
      await new Promise(r => setTimeout(r, 20));
    return ids();
  }

  it('refuses a bad maxPipelinedRequests with INVALID_CONFIG naming the field and the value', async () => {
    for (const bad of [0, -1, 1.5, '8']) {
      const error = await dispatcher.listen({ maxPipelinedRequests: bad as number }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(InvalidConfigError);
      expect((error as Error).message).toMatch(
        new RegExp(`maxPipelinedRequests must be a positive integer, got ${String(bad)}`),
      );
    }
  });

  it('one socket pipelining 3 000 requests without reading does not take the slots and queue: others get 200', async () => {
    const floodSeenBefore = active.floodSeen;
    const flood = await pipeline(Array.from({ length: 3_000 }, (_, i) => `/flood/${i}`));
    flood.pause(); // reads nothing
    // normal clients right behind it, a few at a time, over a couple of seconds
    const statuses: number[] = [];
    for (let round = 0; round < 5; round++) {
      const batch = await Promise.all(
        Array.from({ length: 4 }, () =>
          fetch(`${door.url}/normal`, { signal: AbortSignal.timeout(30_000) }).then(async r => {
            await r.arrayBuffer();
            return r.status;
          }),
        ),
      );
      statuses.push(...batch);
    }
    expect(statuses).toEqual(Array.from({ length: 20 }, () => 200));
    // at most maxPipelinedRequests of the flood reached the instance; the connection was closed
    // once more than 16 × as many waited
    expect(active.floodSeen - floodSeenBefore).toBeLessThanOrEqual(3);
    const deadline = Date.now() + 10_000;
    while (!flood.destroyed && flood.readableEnded === false && Date.now() < deadline) {
      flood.resume();
      await new Promise(r => setTimeout(r, 20));
    }
    expect(flood.destroyed || flood.readableEnded).toBe(true);
  });

  it('a pipelining client that reads gets every streamed answer in order, at most maxPipelinedRequests at a time (proxy path)', async () => {
    active.maxOrder = 0;
    const count = 3 + 16 * 3; // in flight + the most that may wait
    const socket = await pipeline(Array.from({ length: count }, (_, i) => `/order/${i}`));
    const ids = await answers(socket, '/order/', count);
    expect(ids).toEqual(Array.from({ length: count }, (_, i) => `/order/${i}`));
    expect(active.maxOrder).toBeGreaterThanOrEqual(1);
    expect(active.maxOrder).toBeLessThanOrEqual(3);
  });

  it('the same on the in-process handler path', async () => {
    active.maxLocal = 0;
    const count = 3 + 16 * 3; // in flight + the most that may wait
    const socket = await pipeline(Array.from({ length: count }, (_, i) => `/local/${i}`));
    const ids = await answers(socket, '/local/', count);
    expect(ids).toEqual(Array.from({ length: count }, (_, i) => `/local/${i}`));
    expect(active.maxLocal).toBeGreaterThanOrEqual(1);
    expect(active.maxLocal).toBeLessThanOrEqual(3);
  });

  it("a full connection whose answers make no progress is closed after the listener's requestTimeoutMs", async () => {
    const requestTimeoutMs = 1_000;
    const slowDoor = await dispatcher.listen({
      maxPipelinedRequests: 2,
      headersTimeoutMs: requestTimeoutMs,
      requestTimeoutMs,
    });
    try {
      // 4 MiB answers fill the kernel's buffers: a client that reads nothing never completes one
      const socket = connect(slowDoor.port, '127.0.0.1');
      sockets.push(socket);
      socket.on('error', () => {});
      await once(socket, 'connect');
      socket.pause();
      const count = 20;
      socket.write(
        Array.from({ length: count }, (_, i) => `GET /big/${i} HTTP/1.1\r\nHost: x\r\n\r\n`).join(
          '',
        ),
      );
      await new Promise(r => setTimeout(r, 4 * requestTimeoutMs));
      // now read: the connection was closed by then, with far fewer than its answers
      let bytes = 0;
      socket.on('data', (chunk: Buffer) => (bytes += chunk.length));
      const ended = new Promise<boolean>(resolve => socket.once('close', () => resolve(true)));
      socket.resume();
      const closed = await Promise.race([
        ended,
        new Promise<false>(r => setTimeout(() => r(false), 20_000)),
      ]);
      expect(closed).toBe(true);
      // without the gate all 20 answers (80 MiB) stream once the client reads
      expect(bytes).toBeLessThan((count / 2) * 4 * 1024 * 1024);
    } finally {
      await slowDoor.close();
    }
  });
});
