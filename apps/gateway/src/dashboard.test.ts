import { once } from 'node:events';
import {
  createServer,
  get,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { Dashboard, type DashboardOptions } from './dashboard.js';
import type { DashboardState } from './dashboardState.js';
import { EventLog } from './eventLog.js';
import { TracesApi } from './tracesApi.js';
import { TraceStore } from './traceStore.js';

/** A snapshot of `bytes` bytes that counts how often it is serialised. */
function bigState(bytes: number): { state: DashboardState; serialised: () => number } {
  let count = 0;
  const blob = 'x'.repeat(bytes);
  const snapshot = {
    toJSON() {
      count++;
      return { blob };
    },
  };
  // only `snapshot()` is read by the dashboard; the real one needs a running dispatcher
  return {
    state: { snapshot: () => snapshot } as unknown as DashboardState,
    serialised: () => count,
  };
}

const open: Array<{ close(): void }> = [];
afterEach(() => {
  for (const item of open.splice(0)) item.close();
});

/** A real HTTP server in front of a dashboard; `responses` are its event streams. */
async function serve(state: DashboardState, options: DashboardOptions = {}) {
  const events = new EventLog();
  const dashboard = new Dashboard(state, events, options);
  const responses: ServerResponse[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (path === '/_x/events') responses.push(res);
    if (!dashboard.handle(req, res, path)) res.writeHead(404).end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const sockets: Socket[] = [];
  open.push({
    close: () => {
      dashboard.close();
      for (const socket of sockets) socket.destroy();
      server.closeAllConnections();
      server.close();
    },
  });
  /** Opens `/_x/events` on a raw socket; a client with `read` false never reads a byte. */
  const stream = async (
    read: boolean,
    headers = '',
  ): Promise<{ text: () => string; eventLines: () => number }> => {
    const socket = connect(port, '127.0.0.1');
    sockets.push(socket);
    socket.on('error', () => {});
    await once(socket, 'connect');
    socket.write(`GET /_x/events HTTP/1.1\r\nHost: x\r\n${headers}\r\n`);
    let text = '';
    let lines = 0;
    let tail = '';
    if (read)
      socket.setEncoding('latin1').on('data', (chunk: string) => {
        text += chunk.slice(0, 200);
        // a line split across chunks is counted once: the carried tail is shorter than a match
        const joined = tail + chunk;
        lines += joined.split('event: event\n').length - 1;
        tail = joined.slice(-12);
      });
    else socket.pause();
    return { text: () => text, eventLines: () => lines };
  };
  const request = (path: string, headers: Record<string, string> = {}) =>
    new Promise<{ status: number; headers: IncomingMessage['headers']; body: string }>(
      (resolve, reject) => {
        const req = get({ host: '127.0.0.1', port, path, headers }, res => {
          let body = '';
          res.setEncoding('utf8').on('data', (c: string) => (body += c.slice(0, 500)));
          if (res.headers['content-type'] === 'text/event-stream') {
            res.once('data', () => {
              req.destroy();
              resolve({ status: res.statusCode!, headers: res.headers, body });
            });
            return;
          }
          res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
        });
        req.on('error', reject);
      },
    );
  return { dashboard, events, responses, stream, request };
}

describe('Dashboard event streams', () => {
  it('serialises each snapshot once per broadcast, however many streams are open', async () => {
    const { state, serialised } = bigState(1_000);
    const { dashboard, stream } = await serve(state);
    for (let i = 0; i < 10; i++) await stream(true);
    await sleep(100);
    const before = serialised();
    for (let i = 0; i < 5; i++) dashboard.broadcast();
    expect(serialised() - before).toBe(5);
  });

  it('keeps the bytes buffered for a client that never reads bounded, drops it after the stall timeout, and keeps serving readers', async () => {
    const frame = 256 * 1024;
    const maxBufferedBytes = 1024 * 1024;
    const { state } = bigState(frame);
    const { dashboard, responses, stream } = await serve(state, {
      maxBufferedBytes,
      stallTimeoutMs: 1_500,
    });
    const reader = await stream(true);
    for (let i = 0; i < 5; i++) await stream(false);
    await sleep(100);
    expect(dashboard.clients).toBe(6);
    let maxBuffered = 0;
    // 60 snapshots of 256 KiB: 15 MiB per client, more than the kernel's socket buffers hold
    for (let i = 0; i < 60; i++) {
      dashboard.broadcast();
      for (const res of responses) maxBuffered = Math.max(maxBuffered, res.writableLength);
      await sleep(50);
    }
    expect(maxBuffered).toBeLessThanOrEqual(maxBufferedBytes + frame + 1024);
    expect(dashboard.clients).toBe(1); // the five that never read were closed
    expect(dashboard.counters.dropped).toBe(5);
    expect(reader.text()).toContain('event: state');
  });

  it('delivers every event line of a burst, batched into one write per stream', async () => {
    const { state } = bigState(100);
    const { events, stream } = await serve(state);
    const readers = [await stream(true), await stream(true)];
    await sleep(50);
    for (let i = 0; i < 50; i++) events.add('test', 'info', `line ${i}`);
    await sleep(300);
    for (const reader of readers) expect(reader.eventLines()).toBe(50);
  });

  it('answers a stream over maxStreams with 503 TOO_MANY_STREAMS and Retry-After', async () => {
    const { state } = bigState(100);
    const { dashboard, request, stream } = await serve(state, { maxStreams: 2 });
    await stream(true);
    await stream(true);
    await sleep(50);
    const refused = await request('/_x/events');
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('5');
    expect(JSON.parse(refused.body)).toMatchObject({ error: { code: 'TOO_MANY_STREAMS' } });
    expect(dashboard.clients).toBe(2);
    expect(dashboard.counters.refused).toBe(1);
  });

  it('with a token, /_x/ pages, state and events need it (bearer, or the cookie /_x/?token= sets)', async () => {
    const token = 'dashboard-token-0123456789';
    const { state } = bigState(100);
    const { request } = await serve(state, { token });
    for (const path of ['/_x/', '/_x/state', '/_x/events', '/_x/traces']) {
      const refused = await request(path);
      expect(refused.status, path).toBe(401);
      expect(JSON.parse(refused.body)).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
      expect((await request(path, { authorization: 'Bearer wrong-token-0123456789' })).status).toBe(
        401,
      );
      expect((await request(path, { authorization: `Bearer ${token}` })).status, path).toBe(200);
    }
    expect((await request('/_x/?token=wrong')).status).toBe(401);
    const login = await request(`/_x/?token=${token}`);
    expect(login.status).toBe(303);
    expect(login.headers.location).toBe('/_x/');
    const cookie = String(login.headers['set-cookie']).split(';')[0]!;
    expect(String(login.headers['set-cookie'])).toMatch(/HttpOnly; SameSite=Strict/);
    expect((await request('/_x/events', { cookie })).status).toBe(200);
    expect((await request('/_x/state', { cookie: `a=b; ${cookie}` })).status).toBe(200);
  });

  it('serves the trace API with the dashboard, and /_x/traces says when tracing is off', async () => {
    const { state } = bigState(100);
    const store = new TraceStore({ dashboardTraces: 2, maxSpansPerTrace: 10, maxSpans: 100 });
    const { request } = await serve(state, { traces: new TracesApi(store, undefined) });
    const list = await request('/_x/traces');
    expect(list.status).toBe(200);
    expect(JSON.parse(list.body)).toMatchObject({
      enabled: true,
      endpoints: [],
      stored: { spans: 0 },
    });
    expect((await request('/_x/traces/abc')).status).toBe(400);
    expect((await request(`/_x/traces/${'a'.repeat(32)}`)).status).toBe(404);
    const off = await serve(state);
    expect(JSON.parse((await off.request('/_x/traces')).body)).toEqual({
      enabled: false,
      endpoints: [],
    });
  });
});
