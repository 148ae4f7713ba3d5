import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startFaultProxy } from './faultProxy.js';
import type { FaultProxy, FaultProxyOptions } from './faultProxy.js';
import { startTestServer } from './testServer.js';
import type { ScriptStep, TestServer } from './testServer.js';
import { waitFor } from './waitFor.js';

const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  await Promise.all(cleanups.splice(0).map(fn => fn()));
});

async function setup(
  proxyOptions: Omit<FaultProxyOptions, 'target'> = {},
  script?: ScriptStep,
): Promise<{ server: TestServer; proxy: FaultProxy }> {
  const server = await startTestServer(script === undefined ? {} : { script });
  const proxy = await startFaultProxy({
    target: { host: server.host, port: server.port },
    ...proxyOptions,
  });
  cleanups.push(
    () => proxy.close(),
    () => server.close(),
  );
  return { server, proxy };
}

/** TCP connect outcome: 'connected' or the error code. */
function tryConnect(port: number): Promise<string> {
  return new Promise(resolve => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

function causeCode(err: unknown): unknown {
  return (err as { cause?: { code?: unknown } }).cause?.code;
}

describe('startFaultProxy', () => {
  it('pass forwards requests and responses both ways', async () => {
    const { server, proxy } = await setup();
    expect(proxy.url).toBe(`http://127.0.0.1:${proxy.port}`);
    expect(proxy.mode).toBe('pass');
    const res = await fetch(`${proxy.url}/through`, { method: 'POST', body: 'hello' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, path: '/through' });
    expect(server.requests[0]?.body.toString()).toBe('hello');
    expect(proxy.connections).toBe(1);
    expect(proxy.totalConnections).toBe(1);
  });

  it('accepts the target as a URL', async () => {
    const server = await startTestServer();
    const proxy = await startFaultProxy({ target: server.url });
    cleanups.push(
      () => proxy.close(),
      () => server.close(),
    );
    expect((await fetch(`${proxy.url}/u`)).status).toBe(200);
  });

  it('latencyMs delays each chunk in each direction and is settable', async () => {
    // a latency large beside a busy machine's scheduling delays, so both bounds are generous
    const { proxy } = await setup({ latencyMs: 400 });
    let started = performance.now();
    const res = await fetch(proxy.url);
    await res.arrayBuffer();
    expect(performance.now() - started).toBeGreaterThanOrEqual(790);

    proxy.latencyMs = 0;
    started = performance.now();
    await (await fetch(proxy.url)).arrayBuffer();
    expect(performance.now() - started).toBeLessThan(400);
  });

  it('reset fails new requests and destroys open connections', async () => {
    const { server, proxy } = await setup({}, { hang: true });
    const hanging = fetch(proxy.url);
    hanging.catch(() => {});
    await server.waitForRequests(1);
    proxy.mode = 'reset';
    await expect(hanging).rejects.toThrow(TypeError);
    await waitFor(() => proxy.connections === 0 && server.inFlight === 0);

    await expect(fetch(proxy.url)).rejects.toThrow(TypeError);
    expect(server.requestCount).toBe(1);

    await proxy.setMode('pass');
    server.setScript({ status: 204 });
    expect((await fetch(proxy.url)).status).toBe(204);
  });

  it('passes a server-side close of an idle keep-alive connection on to the client', async () => {
    const { server, proxy } = await setup();
    await (await fetch(proxy.url)).arrayBuffer();
    expect(proxy.connections).toBe(1);
    server.closeIdleConnections();
    await waitFor(() => proxy.connections === 0 && server.connections === 0);
    expect((await fetch(proxy.url)).status).toBe(200);
  });

  it('resetAll destroys every open connection', async () => {
    const { server, proxy } = await setup({}, { hang: true });
    const calls = [fetch(proxy.url), fetch(proxy.url)];
    for (const call of calls) call.catch(() => {});
    await server.waitForRequests(2);
    expect(proxy.connections).toBe(2);
    proxy.resetAll();
    for (const call of calls) await expect(call).rejects.toThrow(TypeError);
    await waitFor(() => proxy.connections === 0);
  });

  it('blackhole accepts but never answers, so the client times out', async () => {
    const { server, proxy } = await setup({ mode: 'blackhole' });
    await expect(fetch(proxy.url, { signal: AbortSignal.timeout(200) })).rejects.toMatchObject({
      name: 'TimeoutError',
    });
    expect(server.requestCount).toBe(0);
    expect(proxy.totalConnections).toBeGreaterThanOrEqual(1);
  });

  it('blackhole lets a client go once it closes its side', async () => {
    const { proxy } = await setup({ mode: 'blackhole' });
    const socket = connect({ host: '127.0.0.1', port: proxy.port });
    socket.on('data', () => expect.fail('blackhole must not answer'));
    await new Promise<void>(resolve => socket.once('connect', () => resolve()));
    socket.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
    await waitFor(() => proxy.connections === 1);
    socket.end();
    await waitFor(() => proxy.connections === 0, { message: 'blackholed client let go after FIN' });
    socket.destroy();
  });

  it('switching to blackhole stops forwarding on open connections', async () => {
    const { server, proxy } = await setup({}, { slowBodyMs: 100, body: 'late' });
    const res = await fetch(proxy.url, { signal: AbortSignal.timeout(400) });
    proxy.mode = 'blackhole';
    await expect(res.text()).rejects.toMatchObject({ name: 'TimeoutError' });
    expect(server.requestCount).toBe(1);
  });

  it('refuse closes the port (ECONNREFUSED) and pass re-listens on the same port', async () => {
    const { proxy } = await setup();
    const port = proxy.port;
    expect(await tryConnect(port)).toBe('connected');

    proxy.mode = 'refuse';
    expect(proxy.mode).toBe('refuse');
    expect(await tryConnect(port)).toBe('ECONNREFUSED');
    const refused = await fetch(proxy.url).catch((err: unknown) => err);
    expect(causeCode(refused)).toBe('ECONNREFUSED');

    await proxy.setMode('pass');
    expect(proxy.port).toBe(port);
    expect((await fetch(`${proxy.url}/back`)).status).toBe(200);
  });

  it('can start in refuse mode', async () => {
    const { proxy } = await setup({ mode: 'refuse' });
    expect(proxy.port).toBeGreaterThan(0);
    expect(await tryConnect(proxy.port)).toBe('ECONNREFUSED');
    await proxy.setMode('blackhole');
    expect(await tryConnect(proxy.port)).toBe('connected');
  });

  it('resets the client when the target refuses', async () => {
    const server = await startTestServer();
    await server.close();
    const proxy = await startFaultProxy({ target: { host: server.host, port: server.port } });
    cleanups.push(() => proxy.close());
    await expect(fetch(proxy.url)).rejects.toThrow(TypeError);
    await waitFor(() => proxy.connections === 0);
  });

  it('close() releases everything, is idempotent and works as asyncDispose', async () => {
    const { server, proxy } = await setup({ latencyMs: 50 }, { hang: true });
    const call = fetch(proxy.url);
    call.catch(() => {});
    await server.waitForRequests(1);
    const closing = proxy.close();
    expect(proxy.close()).toBe(closing);
    await closing;
    await proxy[Symbol.asyncDispose]();
    await expect(call).rejects.toThrow(TypeError);
    expect(proxy.connections).toBe(0);
    expect(await tryConnect(proxy.port)).toBe('ECONNREFUSED');
    await expect(proxy.setMode('pass')).rejects.toThrow(/closed/);
  });
});
