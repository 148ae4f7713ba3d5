import { InvalidArgumentError } from './errors.js';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
