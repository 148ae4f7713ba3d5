import { InvalidArgumentError } from './errors.js';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { startTestServer } from '@x/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAgent } from './agent.js';
import { faultTolerant } from './faultTolerant.js';
import { Http } from './http.js';

/** A real HTTP CONNECT proxy on loopback that counts the tunnels it opened. */
async function startConnectProxy(): Promise<{
  url: string;
  tunnels: string[];
  close(): Promise<void>;
}> {
  const tunnels: string[] = [];
  const server: Server = createHttpServer((_req, res) => res.writeHead(405).end());
  server.on('connect', (req, clientSocket, head) => {
    tunnels.push(req.url ?? '');
    const [host, port] = (req.url ?? '').split(':');
    const upstream = connect(Number(port), host!, () => {
      clientSocket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(clientSocket);
      clientSocket.pipe(upstream);
    });
    upstream.on('error', () => clientSocket.destroy());
    clientSocket.on('error', () => upstream.destroy());
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    tunnels,
    close: () =>
      new Promise(resolve => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('createAgent', () => {
  it('rejects bad pool, timeout and proxy options with clear errors', () => {
    expect(() => createAgent({ httpPoolSize: 0 })).toThrow(RangeError);
    expect(() => createAgent({ connectTimeout: 0 })).toThrow(InvalidArgumentError);
    expect(() => createAgent({ connectTimeout: 3e9 })).toThrow(
      /connectTimeout: .* received 3000000000/,
    );
    expect(() => createAgent({ proxy: 'not a url' })).toThrow(TypeError);
  });

  it('sends requests through an HTTP proxy (dace use_proxy)', async () => {
    const backend = await startTestServer({ body: { via: 'backend' } });
    const proxy = await startConnectProxy();
    const fn = faultTolerant(
      async call => (await call.http.request('GET', `${backend.url}/thing`)).json(),
      {
        proxy: proxy.url,
        retryAttempts: 0,
      },
    );
    try {
      await expect(fn()).resolves.toEqual({ via: 'backend' });
      expect(proxy.tunnels).toEqual([`127.0.0.1:${backend.port}`]);
      expect(backend.requests[0]?.path).toBe('/thing');
    } finally {
      await fn.close();
      await proxy.close();
      await backend.close();
    }
  });

  it("reads HTTP_PROXY with proxy: 'env'", async () => {
    const backend = await startTestServer({ body: { ok: true } });
    const proxy = await startConnectProxy();
    const saved = { HTTP_PROXY: process.env.HTTP_PROXY, NO_PROXY: process.env.NO_PROXY };
    process.env.HTTP_PROXY = proxy.url;
    delete process.env.NO_PROXY;
    const agent = createAgent({ proxy: 'env' });
    try {
      const res = await new Http(agent).request('GET', `${backend.url}/env`);
      expect(await res.json()).toEqual({ ok: true });
      expect(proxy.tunnels).toHaveLength(1);
    } finally {
      Object.assign(process.env, saved);
      if (saved.HTTP_PROXY === undefined) delete process.env.HTTP_PROXY;
      await agent.close();
      await proxy.close();
      await backend.close();
    }
  });
});

describe('tls (dace context_factory)', () => {
  let dir: string;
  let cert: Buffer;
  let url: string;
  let server: ReturnType<typeof createHttpsServer>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'x-tls-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=IP:127.0.0.1,DNS:localhost',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    cert = readFileSync(join(dir, 'cert.pem'));
    server = createHttpsServer({ key: readFileSync(join(dir, 'key.pem')), cert }, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"secure":true}');
    });
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise(resolve => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a self-signed server by default and accepts it with its CA', async () => {
    const strict = faultTolerant(async call => (await call.http.request('GET', url)).json(), {
      retryAttempts: 0,
    });
    const trusting = faultTolerant(async call => (await call.http.request('GET', url)).json(), {
      retryAttempts: 0,
      tls: { ca: cert },
    });
    try {
      await expect(strict()).rejects.toMatchObject({
        code: 'CONNECTION_ERROR',
        cause: { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' },
      });
      await expect(trusting()).resolves.toEqual({ secure: true });
    } finally {
      await strict.close();
      await trusting.close();
    }
  });
});

/**
 * A blackholed address on loopback: a listening socket (backlog 1) in a worker thread whose event
 * loop is blocked, so nothing ever accepts; once the accept queue is full the kernel drops new
 * SYNs and a connect hangs until the client's connect timeout.
 */
async function startBlackhole(): Promise<{ port: number; close(): Promise<void> }> {
  const stop = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     const server = require('node:net').createServer();
     server.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
       parentPort.postMessage(server.address().port);
       // block this thread's event loop: libuv never runs accept() while it waits
       while (Atomics.load(workerData, 0) === 0) Atomics.wait(workerData, 0, 0, 50);
       server.close();
     });`,
    { eval: true, workerData: stop },
  );
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  // fill the accept queue (backlog + 1 on Linux); later handshakes never complete
  const fillers: Socket[] = [];
  for (let i = 0; i < 4; i++) {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => {});
    fillers.push(socket);
  }
  await new Promise(resolve => setTimeout(resolve, 100));
  return {
    port,
    async close() {
      for (const socket of fillers) socket.destroy();
      Atomics.store(stop, 0, 1);
      Atomics.notify(stop, 0);
      await worker.terminate();
    },
  };
}

describe('httpPoolSize and connectTimeout have their effect (not only their validation)', () => {
  it('httpPoolSize caps the connections per origin: more calls wait for a free one', async () => {
    const backend = await startTestServer({ delayMs: 300, body: { ok: 1 } });
    const call = (poolSize: number) =>
      faultTolerant(async c => (await c.http.request('GET', `${backend.url}/slow`)).json(), {
        httpPoolSize: poolSize,
        maxOpenPerNetloc: 50,
        retryAttempts: 0,
        timeout: 20_000,
      });
    const capped = call(2);
    const wide = call(10);
    try {
      await Promise.all(Array.from({ length: 6 }, () => capped()));
      expect(backend.maxInFlight).toBe(2);
      expect(backend.totalConnections).toBe(2);
      backend.resetStats();
      await Promise.all(Array.from({ length: 6 }, () => wide()));
      expect(backend.maxInFlight).toBe(6);
    } finally {
      await capped.close();
      await wide.close();
      await backend.close();
    }
  });

  it('connectTimeout bounds a connect to a blackholed address (CONNECTION_ERROR, UND_ERR_CONNECT_TIMEOUT)', async () => {
    const hole = await startBlackhole();
    const call = (connectTimeout: number) =>
      faultTolerant(
        async c => (await c.http.request('GET', `http://127.0.0.1:${hole.port}/`)).json(),
        { connectTimeout, retryAttempts: 0, timeout: 20_000 },
      );
    const short = call(300);
    const long = call(2_500);
    try {
      let started = Date.now();
      await expect(short()).rejects.toMatchObject({
        code: 'CONNECTION_ERROR',
        cause: { code: 'UND_ERR_CONNECT_TIMEOUT' },
      });
      const shortMs = Date.now() - started;
      expect(shortMs).toBeGreaterThanOrEqual(250);
      expect(shortMs).toBeLessThan(2_000);
      started = Date.now();
      await expect(long()).rejects.toMatchObject({ cause: { code: 'UND_ERR_CONNECT_TIMEOUT' } });
      expect(Date.now() - started).toBeGreaterThanOrEqual(2_400);
    } finally {
      await short.close();
      await long.close();
      await hole.close();
    }
  });
});
