import { once } from 'node:events';
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inProcess } from './backends/inProcess.js';
import { remote } from './backends/remote.js';
import { createDispatcher, type Dispatcher, type MountedFrontDoor } from './createDispatcher.js';
import type { DispatcherEvent } from './dispatcherEvent.js';

const TOKEN = 'admin-token-0123456789abcdef';

async function listen(server: Server): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/**
 * An instance: answers with what it saw (`hung` never answers `/api/hang`); upgrades are echoed back
 * (a 101, then every byte returned).
 */
async function startInstance(name: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    if (req.url === '/api/hang' && name === 'hung') return; // never answers
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'x-instance': name });
      res.end(
        JSON.stringify({
          name,
          url: req.url,
          requestId: req.headers['x-request-id'],
          budget: req.headers['x-request-timeout-ms'],
          forwardedFor: req.headers['x-forwarded-for'],
        }),
      );
    });
  });
  server.on('upgrade', (_req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n' +
        `X-Instance: ${name}\r\n\r\n`,
    );
    if (head.length > 0) socket.write(head);
    socket.pipe(socket);
  });
  return { server, url: await listen(server) };
}

interface Answer {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

function get(
  base: string,
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${base}${path}`, { method, headers, agent: false }, res => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode!,
          headers: res.headers,
          body: Buffer.concat(chunks).toString(),
        }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the front door mounted on a server of the application', () => {
  let good: Awaited<ReturnType<typeof startInstance>>;
  let hung: Awaited<ReturnType<typeof startInstance>>;
  let dispatcher: Dispatcher;
  let door: MountedFrontDoor;
  let app: Server;
  let base: string;
  const events: DispatcherEvent[] = [];
  const appHits: string[] = [];

  beforeAll(async () => {
    good = await startInstance('good');
    hung = await startInstance('hung');
    dispatcher = createDispatcher({
      host: 'example.com',
      requestTimeoutMs: 20_000,
      modules: {
        default: { versions: { v1: { backend: inProcess(() => ({ body: 'default module' })) } } },
        api: {
          versions: {
            v1: {
              backend: remote([good.url, hung.url]),
              scaling: { kind: 'manual', instances: 2 },
              balancer: 'roundRobin',
              // probes always pass and rarely run: only passive ejection takes `hung` out
              healthCheck: { check: () => true, intervalMs: 600_000, ejectAfterTimeouts: 1 },
            },
          },
        },
        web: { versions: { v1: { backend: inProcess(req => ({ body: `web ${req.path}` })) } } },
      },
      rules: [
        { url: '*/api/*', module: 'api' },
        { url: '*/web/*', module: 'web' },
      ],
    });
    dispatcher.on(event => events.push(event));
    door = dispatcher.mount({
      admin: { token: TOKEN },
      requestId: req => req.headers['x-request-id'] as string | undefined,
    });
    // the application's own server: its routes first, then the dispatcher's, then its 404
    app = createServer((req: IncomingMessage, res: ServerResponse) => {
      if (req.url === '/app/hello') {
        appHits.push(req.url);
        res.end('app hello');
        return;
      }
      // an edge that caps the caller's budget before the front door reads it
      const budget = Number(req.headers['x-request-timeout-ms']);
      if (budget > 5_000) req.headers['x-request-timeout-ms'] = '5000';
      if (req.headers['x-app-id'] !== undefined)
        req.headers['x-request-id'] = req.headers['x-app-id'] as string;
      door.handler(req, res, () => {
        appHits.push(req.url!);
        res.writeHead(404).end('app 404');
      });
    });
    app.on('upgrade', door.upgrade);
    base = await listen(app);
  });

  afterAll(async () => {
    await dispatcher.close();
    for (const s of [app, good.server, hung.server]) {
      s.closeAllConnections();
      s.close();
    }
  });

  it('serves the requests the dispatch rules own and passes the others to next()', async () => {
    const web = await get(base, '/web/page');
    expect(web.status).toBe(200);
    expect(web.body).toBe('web /web/page');
    expect(web.headers['x-served-by']).toBe('web/v1/0');
    expect(web.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);

    const own = await get(base, '/app/hello');
    expect(own.body).toBe('app hello');
    const other = await get(base, '/elsewhere');
    expect(other.status).toBe(404);
    expect(other.body).toBe('app 404');
    expect(appHits).toEqual(['/app/hello', '/elsewhere']);
  });

  it('matches() owns the admin path, rule paths and module host names only', () => {
    const req = (url: string, host = 'example.com') =>
      ({ url, headers: { host }, socket: { remoteAddress: '127.0.0.1' } }) as IncomingMessage;
    expect(door.matches(req('/api/x'))).toBe(true);
    expect(door.matches(req('/_x/admin/modules'))).toBe(true);
    expect(door.matches(req('/', 'web.example.com'))).toBe(true);
    expect(door.matches(req('/other'))).toBe(false);
    expect(door.matches(req('/', 'bad host!'))).toBe(false);
  });

  it('serves the admin API and takes the request id the application gave', async () => {
    const answer = await get(base, '/_x/admin/modules', {
      authorization: `Bearer ${TOKEN}`,
      'x-app-id': 'app-chosen-id-1',
    });
    expect(answer.status).toBe(200);
    expect(answer.headers['x-request-id']).toBe('app-chosen-id-1');
    const names = (JSON.parse(answer.body) as { modules: Array<{ name: string }> }).modules.map(
      m => m.name,
    );
    expect(names).toEqual(['default', 'api', 'web']);
    expect((await get(base, '/_x/admin/modules')).status).toBe(401);
  });

  it('forwards the budget the application capped and the client address', async () => {
    const answer = await get(base, '/api/echo', {
      'x-request-timeout-ms': '60000',
      'x-app-id': 'app-chosen-id-2',
    });
    expect(answer.status).toBe(200);
    const seen = JSON.parse(answer.body) as Record<string, string>;
    expect(seen.requestId).toBe('app-chosen-id-2');
    expect(Number(seen.budget)).toBeGreaterThan(0);
    expect(Number(seen.budget)).toBeLessThanOrEqual(5_000); // the app's cap, not the client's 60 s
    expect(seen.forwardedFor).toBe('127.0.0.1');
    expect(answer.headers['x-request-id']).toBe('app-chosen-id-2');
  });

  it('answers 504 by the caller deadline, naming the instance, and ejects it (passive health)', async () => {
    // round robin: the first or the second request lands on the hung instance
    const started = performance.now();
    const first = [
      await get(base, '/api/hang', { 'x-request-timeout-ms': '400' }),
      await get(base, '/api/hang', { 'x-request-timeout-ms': '400' }),
    ];
    const elapsed = performance.now() - started;
    const timedOut = first.filter(a => a.status === 504);
    expect(timedOut).toHaveLength(1);
    expect(JSON.parse(timedOut[0]!.body).error.code).toBe('DEADLINE_EXCEEDED');
    expect(timedOut[0]!.headers['x-served-by']).toBe('api/v1/1');
    expect(first.find(a => a.status === 200)!.headers['x-served-by']).toBe('api/v1/0');
    expect(elapsed).toBeLessThan(15_000); // by the 400 ms budget, not requestTimeoutMs (20 s)
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'instance-unhealthy', module: 'api', instance: '1' }),
    );
    // out of rotation: every request now goes to the instance that answers
    for (let i = 0; i < 4; i++) {
      const answer = await get(base, '/api/hang', { 'x-request-timeout-ms': '2000' });
      expect(answer.status).toBe(200);
      expect(answer.headers['x-served-by']).toBe('api/v1/0');
    }
  });

  it('tunnels an upgrade to an HTTP instance, X-Served-By on the 101', async () => {
    const fresh = createDispatcher({
      modules: {
        default: { versions: { v1: { backend: remote([good.url]) } } },
        local: { versions: { v1: { backend: inProcess(() => ({ body: 'x' })) } } },
      },
      rules: [{ url: '*/local/*', module: 'local' }],
    });
    const server = createServer(fresh.handler);
    server.on('upgrade', fresh.upgrade);
    const url = await listen(server);
    try {
      const { res, socket, head } = await new Promise<{
        res: IncomingMessage;
        socket: Socket;
        head: Buffer;
      }>((resolve, reject) => {
        const req = httpRequest(`${url}/ws`, {
          headers: { connection: 'Upgrade', upgrade: 'echo' },
          agent: false,
        });
        req.on('upgrade', (res, socket, head) => resolve({ res, socket, head }));
        req.on('response', res => reject(new Error(`no upgrade: ${res.statusCode}`)));
        req.on('error', reject);
        req.end();
      });
      expect(res.statusCode).toBe(101);
      expect(res.headers['x-served-by']).toBe('default/v1/0');
      expect(res.headers['x-instance']).toBe('good');
      let echoed = head.toString();
      socket.on('data', (chunk: Buffer) => (echoed += chunk.toString()));
      socket.write('ping over the tunnel');
      const until = Date.now() + 10_000;
      while (!echoed.includes('ping over the tunnel') && Date.now() < until)
        await new Promise(r => setTimeout(r, 20));
      expect(echoed).toContain('ping over the tunnel');
      socket.destroy();

      // in-process instances take no upgrade: an error answer, the socket closed
      const refused = await new Promise<string>((resolve, reject) => {
        const req = httpRequest(`${url}/local/ws`, {
          headers: { connection: 'Upgrade', upgrade: 'echo' },
          agent: false,
        });
        req.on('response', r => resolve(String(r.statusCode)));
        req.on('upgrade', () => reject(new Error('upgraded an in-process instance')));
        req.on('error', reject);
        req.end();
      });
      expect(refused).toBe('502');
    } finally {
      await fresh.close(); // cuts the tunnels
      server.closeAllConnections();
      server.close();
    }
  });

  it('answers 503 DISPATCHER_CLOSED once the dispatcher is closed', async () => {
    const closing = createDispatcher({
      modules: { default: { versions: { v1: { backend: inProcess(() => ({ body: 'up' })) } } } },
    });
    const server = createServer(closing.handler);
    const url = await listen(server);
    try {
      expect((await get(url, '/')).body).toBe('up'); // the first request starts it
      await closing.close();
      const after = await get(url, '/');
      expect(after.status).toBe(503);
      expect(JSON.parse(after.body).error.code).toBe('DISPATCHER_CLOSED');
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
