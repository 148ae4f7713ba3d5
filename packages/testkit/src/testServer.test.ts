import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { startTestServer, startTestServers } from './testServer.js';
import type { TestServer } from './testServer.js';
import { waitFor } from './waitFor.js';

const servers: TestServer[] = [];

async function start(...args: Parameters<typeof startTestServer>): Promise<TestServer> {
  const server = await startTestServer(...args);
  servers.push(server);
  return server;
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map(s => s.close()));
});

async function statusOf(url: string, init?: RequestInit): Promise<number> {
  const res = await fetch(url, init);
  await res.arrayBuffer();
  return res.status;
}

describe('startTestServer', () => {
  it('answers 200 {"ok":true,"path":...} by default and records the request', async () => {
    const server = await start();
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(server.origin).toBe(server.url);
    expect(server.host).toBe('127.0.0.1');
    expect(server.port).toBeGreaterThan(0);

    const res = await fetch(`${server.url}/items?id=7&tag=a`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-trace': 'abc' },
      body: JSON.stringify({ name: 'n' }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.json()).toEqual({ ok: true, path: '/items' });

    expect(server.requestCount).toBe(1);
    const [recorded] = server.requests;
    expect(recorded?.method).toBe('POST');
    expect(recorded?.url).toBe('/items?id=7&tag=a');
    expect(recorded?.path).toBe('/items');
    expect(recorded?.query.get('id')).toBe('7');
    expect(recorded?.headers['x-trace']).toBe('abc');
    expect(recorded?.body.toString()).toBe('{"name":"n"}');
    expect(recorded?.json).toEqual({ name: 'n' });
    expect(recorded?.receivedAt).toBeGreaterThan(Date.now() - 5000);
  });

  it('leaves json absent when the body is not JSON', async () => {
    const server = await start();
    await statusOf(server.url, { method: 'POST', body: 'not json' });
    expect(server.requests[0]?.body.toString()).toBe('not json');
    expect(server.requests[0]).not.toHaveProperty('json');
  });

  it('plays the script in order and repeats the last step', async () => {
    const server = await start({ script: [{ status: 500 }, { status: 503 }, { status: 201 }] });
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push(await statusOf(server.url));
    expect(statuses).toEqual([500, 503, 201, 201, 201]);
  });

  it('accepts a bare step or array of steps instead of options', async () => {
    const single = await start({ status: 418, body: 'teapot' });
    const res = await fetch(single.url);
    expect(res.status).toBe(418);
    expect(await res.text()).toBe('teapot');

    const list = await start([{ status: 502 }, { status: 204 }]);
    expect(await statusOf(list.url)).toBe(502);
    expect(await statusOf(list.url)).toBe(204);

    const fn = await start(req => ({ status: 202, body: { method: req.method } }));
    const fnRes = await fetch(fn.url, { method: 'PUT' });
    expect(fnRes.status).toBe(202);
    expect(await fnRes.json()).toEqual({ method: 'PUT' });
  });

  it('sends strings and Buffers as-is, JSON-encodes anything else, and adds headers', async () => {
    const server = await start({
      script: [
        { body: 'plain', headers: { 'content-type': 'text/plain', 'x-extra': '1' } },
        { body: Buffer.from([1, 2, 3]) },
        { body: [1, { a: null }] },
        { body: { a: 1 }, headers: { 'Content-Type': 'application/problem+json' } },
      ],
    });
    const first = await fetch(server.url);
    expect(first.headers.get('content-type')).toBe('text/plain');
    expect(first.headers.get('x-extra')).toBe('1');
    expect(await first.text()).toBe('plain');

    const second = await fetch(server.url);
    expect(second.headers.get('content-type')).toBeNull();
    expect(Buffer.from(await second.arrayBuffer())).toEqual(Buffer.from([1, 2, 3]));

    const third = await fetch(server.url);
    expect(third.headers.get('content-type')).toBe('application/json');
    expect(await third.json()).toEqual([1, { a: null }]);

    const fourth = await fetch(server.url);
    expect(fourth.headers.get('content-type')).toBe('application/problem+json');
    expect(await fourth.json()).toEqual({ a: 1 });
  });

  it('answers 500 when a step function throws', async () => {
    const server = await start(() => {
      throw new Error('boom');
    });
    const res = await fetch(server.url);
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ error: 'boom' });
  });

  it('waits delayMs before answering', async () => {
    const server = await start({ delayMs: 150 });
    const started = performance.now();
    expect(await statusOf(server.url)).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
  });

  it('hang never answers: the client times out while inFlight is 1, and close() is prompt', async () => {
    const server = await start({ hang: true });
    const pending = fetch(server.url, { signal: AbortSignal.timeout(200) });
    await waitFor(() => server.inFlight === 1);
    await expect(pending).rejects.toMatchObject({ name: 'TimeoutError' });
    await waitFor(() => server.inFlight === 0, { message: 'inFlight back to 0 after abort' });
    expect(server.maxInFlight).toBe(1);

    const again = fetch(server.url);
    again.catch(() => {});
    await waitFor(() => server.inFlight === 1);
    const closing = performance.now();
    await server.close();
    expect(performance.now() - closing).toBeLessThan(1000);
    await expect(again).rejects.toThrow();
    expect(server.connections).toBe(0);
  });

  it('reset destroys the socket without a response', async () => {
    const server = await start([{ reset: true }, { status: 200 }]);
    await expect(fetch(server.url)).rejects.toThrow(TypeError);
    expect(await statusOf(server.url)).toBe(200);
    await waitFor(() => server.inFlight === 0);
  });

  it('garbage writes non-HTTP bytes then closes', async () => {
    const server = await start({ garbage: true });
    await expect(fetch(server.url)).rejects.toThrow(TypeError);
    expect(server.requestCount).toBe(1);
  });

  it('truncate sends headers then fewer body bytes than announced', async () => {
    const server = await start({ truncate: true, body: { some: 'data' } });
    const res = await fetch(server.url);
    expect(res.status).toBe(200);
    expect(Number(res.headers.get('content-length'))).toBeGreaterThan(15);
    await expect(res.text()).rejects.toThrow();
  });

  it('slowBodyMs sends headers at once and the body later', async () => {
    // a delay large beside a busy machine's scheduling delays, so both bounds are generous
    const server = await start({ slowBodyMs: 800, body: 'late' });
    const started = performance.now();
    const res = await fetch(server.url);
    expect(performance.now() - started).toBeLessThan(600);
    expect(await res.text()).toBe('late');
    expect(performance.now() - started).toBeGreaterThanOrEqual(790);
  });

  it('routes take precedence over the script, each with its own sequence', async () => {
    const server = await start({
      script: { status: 500 },
      routes: {
        'post /x': [{ status: 201 }, { status: 202 }],
        '/x': { status: 203 },
        '/y': [{ status: 404 }, { status: 200 }],
      },
    });
    expect(await statusOf(`${server.url}/x`, { method: 'POST', body: '{}' })).toBe(201);
    expect(await statusOf(`${server.url}/x?q=1`)).toBe(203);
    expect(await statusOf(`${server.url}/y`)).toBe(404);
    expect(await statusOf(`${server.url}/x`, { method: 'POST', body: '{}' })).toBe(202);
    expect(await statusOf(`${server.url}/y`)).toBe(200);
    expect(await statusOf(`${server.url}/x/sub`)).toBe(500);
    expect(await statusOf(`${server.url}/`)).toBe(500);
  });

  it('setScript replaces the script and restarts the sequence', async () => {
    const server = await start([{ status: 500 }, { status: 200 }]);
    expect(await statusOf(server.url)).toBe(500);
    server.setScript([{ status: 503 }, { status: 204 }]);
    expect(await statusOf(server.url)).toBe(503);
    expect(await statusOf(server.url)).toBe(204);
    server.setScript({ status: 202 });
    expect(await statusOf(server.url)).toBe(202);
  });

  it('maxInFlight measures the concurrency seen by the server', async () => {
    const server = await start({ delayMs: 200 });
    const statuses = await Promise.all(Array.from({ length: 5 }, () => statusOf(server.url)));
    expect(statuses).toEqual([200, 200, 200, 200, 200]);
    expect(server.maxInFlight).toBe(5);
    await waitFor(() => server.inFlight === 0);
    expect(server.totalConnections).toBeGreaterThanOrEqual(5);

    server.resetStats();
    expect(server.requests).toEqual([]);
    expect(server.requestCount).toBe(0);
    expect(server.maxInFlight).toBe(0);
    expect(server.totalConnections).toBe(0);
    await statusOf(server.url);
    expect(server.requestCount).toBe(1);
    expect(server.maxInFlight).toBe(1);
  });

  it('waitForRequests resolves once enough requests arrived and rejects on timeout', async () => {
    const server = await start({ delayMs: 50 });
    const waiting = server.waitForRequests(3);
    const calls = Promise.all([statusOf(server.url), statusOf(server.url), statusOf(server.url)]);
    await waiting;
    expect(server.requestCount).toBeGreaterThanOrEqual(3);
    await calls;
    await expect(server.waitForRequests(2)).resolves.toBeUndefined();
    await expect(server.waitForRequests(10, 50)).rejects.toThrow(
      /expected 10 requests within 50ms, got 3/,
    );
    const pending = expect(server.waitForRequests(99)).rejects.toThrow(/closed/);
    await server.close();
    await pending;
  });

  it('closeIdleConnections closes idle keep-alive sockets', async () => {
    const server = await start();
    await statusOf(server.url);
    expect(server.connections).toBe(1);
    server.closeIdleConnections();
    await waitFor(() => server.connections === 0);
    // on a new connection: fetch's pool may not have seen the close yet and would reuse the socket
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const req = request(server.url, { agent: false }, res => {
        res.resume();
        res.once('end', () => resolve(res.statusCode));
      });
      req.once('error', reject);
      req.end();
    });
    expect(status).toBe(200);
    expect(server.totalConnections).toBe(2);
  });

  it('applies keepAliveTimeoutMs', async () => {
    const server = await start({ keepAliveTimeoutMs: 100 });
    await new Promise<void>((resolve, reject) => {
      const req = request(
        server.url,
        { agent: false, headers: { connection: 'keep-alive' } },
        res => {
          res.resume();
          res.once('end', resolve);
        },
      );
      req.once('error', reject);
      req.end();
    });
    await waitFor(() => server.connections === 0, { timeoutMs: 1000 });
  });

  it('close() is idempotent and works as asyncDispose', async () => {
    const server = await startTestServer();
    await statusOf(server.url);
    const first = server.close();
    expect(server.close()).toBe(first);
    await first;
    await server[Symbol.asyncDispose]();
    expect(server.connections).toBe(0);
    await expect(fetch(server.url)).rejects.toThrow(TypeError);
  });
});

describe('startTestServers', () => {
  it('starts n independent servers', async () => {
    const list = await startTestServers(3, [{ status: 500 }, { status: 200 }]);
    servers.push(...list);
    expect(new Set(list.map(s => s.port)).size).toBe(3);
    for (const server of list) expect(await statusOf(server.url)).toBe(500);
    for (const server of list) expect(await statusOf(server.url)).toBe(200);
  });
});
