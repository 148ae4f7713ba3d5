import { once } from 'node:events';
import { Agent, createServer, request, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from './errors.js';
import { PipelineGate, type PipelineGateOptions } from './pipelineGate.js';

/** A real node:http server behind a gate; each request is answered `delayMs` later with its path. */
async function gatedServer(options: PipelineGateOptions, delayMs = 5) {
  const gate = new PipelineGate(options);
  const stats = { served: 0, maxInFlight: 0, closed: 0 };
  const server = createServer((req, res) =>
    gate.admit(req, res, () => {
      stats.served++;
      stats.maxInFlight = Math.max(stats.maxInFlight, gate.inFlight(req.socket));
      res.on('close', () => stats.closed++);
      setTimeout(() => {
        if (!res.destroyed) res.end(req.url);
      }, delayMs);
    }),
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  servers.push(server);
  return { gate, stats, port: (server.address() as AddressInfo).port };
}

const servers: Server[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise(resolve => s.close(resolve));
  }
});

/** A raw connection that writes `count` pipelined GETs (`/0`, `/1`, …) in one write. */
async function pipeline(port: number, count: number): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  sockets.push(socket);
  await once(socket, 'connect');
  let batch = '';
  for (let i = 0; i < count; i++) batch += `GET /${i} HTTP/1.1\r\nHost: x\r\n\r\n`;
  socket.write(batch);
  return socket;
}

/** Bodies of the responses in `text` (each answer's body is its request's path). */
function bodies(text: string): string[] {
  return [...text.matchAll(/\r\n\r\n(\/\d+)/g)].map(m => m[1]!);
}

describe('PipelineGate', () => {
  it('serves at most maxInFlight requests of one pipelining connection at a time, answers in order', async () => {
    const { stats, port } = await gatedServer({ maxInFlight: 4 });
    const count = 60;
    const socket = await pipeline(port, count);
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (text += chunk));
    const deadline = Date.now() + 20_000;
    while (bodies(text).length < count && Date.now() < deadline)
      await new Promise(r => setTimeout(r, 20));
    expect(bodies(text)).toEqual(Array.from({ length: count }, (_, i) => `/${i}`));
    expect(stats.served).toBe(count);
    expect(stats.maxInFlight).toBe(4);
  });

  it('a client that reads no answers stays at maxInFlight, and its full connection is closed after stallTimeoutMs', async () => {
    // big answers fill the kernel's buffers: later answers never complete
    const gate = new PipelineGate({ maxInFlight: 2, maxWaiting: 100, stallTimeoutMs: 300 });
    let served = 0;
    let maxInFlight = 0;
    const big = 'x'.repeat(4 * 1024 * 1024);
    const server = createServer((req, res) =>
      gate.admit(req, res, () => {
        served++;
        maxInFlight = Math.max(maxInFlight, gate.inFlight(req.socket));
        res.end(big);
      }),
    );
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    servers.push(server);
    const accepted = once(server, 'connection') as Promise<[Socket]>;
    const socket = await pipeline((server.address() as AddressInfo).port, 50);
    socket.pause(); // reads nothing (so it would not see the close either: watch the server's end)
    const [serverSide] = await accepted;
    const started = Date.now();
    await once(serverSide, 'close');
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(250); // not the maxWaiting bound: the stall timer
    expect(elapsed).toBeLessThan(15_000);
    expect(maxInFlight).toBe(2);
    expect(served).toBeLessThan(50);
  });

  it('a connection with more than maxWaiting requests waiting is closed; queued answers still get close', async () => {
    const { stats, port } = await gatedServer({ maxInFlight: 2, maxWaiting: 10 }, 200);
    const socket = await pipeline(port, 500);
    socket.resume();
    await once(socket, 'close');
    expect(stats.served).toBe(2);
    // both answers in flight end (the queued second one has no socket: the gate closes it)
    const deadline = Date.now() + 5_000;
    while (stats.closed < 2 && Date.now() < deadline) await new Promise(r => setTimeout(r, 10));
    expect(stats.closed).toBe(2);
  });

  it('other connections are not held back by a pipelining one', async () => {
    const { port } = await gatedServer({ maxInFlight: 2 }, 50);
    await pipeline(port, 200); // never read
    const started = performance.now();
    const answer = await fetch(`http://127.0.0.1:${port}/other`);
    expect(await answer.text()).toBe('/other');
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('refuses bad options with InvalidArgumentError naming the field, expected and received value', () => {
    const cases: Array<[unknown, string, RegExp]> = [
      [{ maxInFlight: 0 }, 'maxInFlight', /maxInFlight: expected an integer >= 1, received 0/],
      [{ maxInFlight: 1.5 }, 'maxInFlight', /received 1\.5/],
      [{ maxInFlight: '8' }, 'maxInFlight', /received "8"/],
      [{ maxInFlight: 2, maxWaiting: -1 }, 'maxWaiting', /maxWaiting: expected an integer >= 0/],
      [{ maxInFlight: 2, stallTimeoutMs: 0 }, 'stallTimeoutMs', /stallTimeoutMs: expected/],
    ];
    for (const [options, field, message] of cases) {
      let caught: unknown;
      try {
        new PipelineGate(options as PipelineGateOptions);
      } catch (error) {
        caught = error;
      }
      expect(caught, field).toBeInstanceOf(InvalidArgumentError);
      expect((caught as InvalidArgumentError).field).toBe(field);
      expect((caught as Error).message).toMatch(message);
    }
    expect(() => new PipelineGate(undefined as never)).toThrow(InvalidArgumentError);
  });

  it('one request at a time per connection (keep-alive) is served at once and leaves nothing in flight', async () => {
    const { stats, port } = await gatedServer({ maxInFlight: 1, stallTimeoutMs: Infinity }, 0);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; i < 20; i++) {
        const res = await fetchWith(agent, port, `/${i}`);
        expect(res).toBe(`/${i}`);
      }
    } finally {
      agent.destroy();
    }
    expect(stats.served).toBe(20);
    expect(stats.maxInFlight).toBe(1);
  });
});

/** GET `path` through a keep-alive `agent`; resolves with the body. */
function fetchWith(agent: Agent, port: number, path: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    request({ host: '127.0.0.1', port, path, agent }, res => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(body));
    })
      .on('error', reject)
      .end();
  });
}
