import { once } from 'node:events';
import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type Server,
} from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inProcess } from '../backends/inProcess.js';
import { remote } from '../backends/remote.js';
import { createDispatcher, type Dispatcher, type HttpFrontDoor } from '../createDispatcher.js';

const TOKEN = 'admin-token-0123456789abcdef';

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  bytes: number;
}

/** The upstream instance: a plain node:http server. */
async function startUpstream(): Promise<{
  server: Server;
  url: string;
  seen: Seen[];
  active: () => number;
  aborted: () => number;
}> {
  const seen: Seen[] = [];
  let active = 0;
  let aborted = 0;
  const server = createServer(async (req, res) => {
    active++;
    res.on('close', () => active--);
    let bytes = 0;
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of req) {
        bytes += chunk.length;
        if (chunks.length < 4) chunks.push(chunk);
      }
    } catch {
      aborted++;
      return; // the proxy cut the upload short
    }
    seen.push({ method: req.method!, url: req.url!, headers: req.headers, bytes });
    const path = req.url!.split('?')[0];
    if (path === '/cookies') {
      res.writeHead(200, [
        ['Set-Cookie', 'a=1'],
        ['Set-Cookie', 'b=2'],
        ['Connection', 'x-secret'],
        ['X-Secret', 'hop'],
        ['Keep-Alive', 'timeout=77'],
        ['Content-Type', 'text/plain'],
      ]);
      res.end('ok');
      return;
    }
    if (path === '/stream') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      for (let i = 0; i < 5; i++) {
        res.write(`part${i};`);
        await new Promise(r => setTimeout(r, 10));
      }
      res.end();
      return;
    }
    if (path === '/endless') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      const timer = setInterval(() => res.write('x'.repeat(1024)), 5);
      res.on('close', () => clearInterval(timer));
      return;
    }
    if (path === '/hold') await new Promise(r => setTimeout(r, 300));
    const body = JSON.stringify({
      method: req.method,
      url: req.url,
      bytes,
      headers: req.headers,
      head: Buffer.concat(chunks).toString('utf8').slice(0, 100),
    });
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    server,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    active: () => active,
    aborted: () => aborted,
  };
}

/** GET through node:http (fetch cannot set Host). */
function get(
  port: number,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers }, res => {
      const chunks: Buffer[] = [];
      res.on('data', c => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode!,
          headers: res.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

/** Sends raw bytes and reads one response (or the close); never hangs longer than `timeoutMs`. */
function raw(
  port: number,
  text: string | Buffer,
  timeoutMs = 3_000,
): Promise<{ status: number; head: string; body: string; closed: boolean; timedOut: boolean }> {
  return new Promise(resolve => {
    const socket = connect(port, '127.0.0.1');
    let data = Buffer.alloc(0);
    let done = false;
    const finish = (closed: boolean, timedOut = false) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const textData = data.toString('latin1');
      const end = textData.indexOf('\r\n\r\n');
      const head = end < 0 ? textData : textData.slice(0, end);
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      resolve({ status, head, body: end < 0 ? '' : textData.slice(end + 4), closed, timedOut });
    };
    const timer = setTimeout(() => finish(false, true), timeoutMs);
    socket.on('data', chunk => {
      data = Buffer.concat([data, chunk]);
      const textData = data.toString('latin1');
      const end = textData.indexOf('\r\n\r\n');
      if (end < 0) return;
      const length = /\r\ncontent-length: (\d+)/i.exec(textData.slice(0, end));
      if (length && data.length >= end + 4 + Number(length[1])) finish(false);
      if (
        /\r\ntransfer-encoding: chunked/i.test(textData.slice(0, end)) &&
        textData.endsWith('0\r\n\r\n')
      )
        finish(false);
    });
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
    socket.write(text);
  });
}

describe('HTTP front door', () => {
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let dispatcher: Dispatcher;
  let door: HttpFrontDoor;
  let trustedDoor: HttpFrontDoor;
  let holdRelease: (() => void) | undefined;

  beforeAll(async () => {
    upstream = await startUpstream();
    dispatcher = createDispatcher({
      host: 'example.com',
      random: () => 0.25,
      modules: {
        default: {
          versions: { v1: { backend: remote([upstream.url]), maxConcurrentRequests: 50 } },
        },
        web: {
          versions: {
            v1: {
              backend: inProcess(async req => {
                if (req.path === '/web/hold') await new Promise<void>(r => (holdRelease = r));
                const text = await req.text();
                return {
                  headers: [
                    ['content-type', 'text/plain'],
                    ['x-path', req.path],
                    ['x-ip', req.sourceIp],
                  ],
                  body: (async function* () {
                    yield new TextEncoder().encode(`in-process ${req.method} ${req.url} `);
                    yield new TextEncoder().encode(`body=${text.length}`);
                  })(),
                };
              }),
              maxConcurrentRequests: 1,
              maxPendingLatencyMs: 100,
              maxQueuedRequests: 5,
            },
          },
        },
        split: {
          versions: {
            a: { backend: inProcess(() => ({ body: 'a' })) },
            b: { backend: inProcess(() => ({ body: 'b' })) },
          },
        },
        admin: {
          versions: {
            v1: {
              backend: inProcess(() => ({ body: 'admin module' })),
              scaling: { kind: 'manual', instances: 1 },
            },
          },
        },
        dead: { versions: { v1: { backend: remote(['http://127.0.0.1:1']) } } },
      },
      rules: [{ url: '*/web/*', module: 'web' }],
      split: [{ module: 'split', weights: { a: 1, b: 1 } }],
    });
    door = await dispatcher.listen({
      admin: { token: TOKEN },
      maxHeaderBytes: 4_096,
      maxBodyBytes: 1_000_000,
      // generous: a busy machine can stall a process for longer than a short head timeout between
      // accepting a connection and reading its head (the 408 test has a door of its own)
      headersTimeoutMs: 5_000,
      requestTimeoutMs: 10_000,
    });
    trustedDoor = await dispatcher.listen({ trustedProxies: ['loopback'] });
  });
  afterAll(async () => {
    await dispatcher.close();
    upstream.server.closeAllConnections();
    upstream.server.close();
  });

  it('proxies with streaming bodies both ways and forwarding headers', async () => {
    const chunks = Array.from({ length: 64 }, (_, i) => Buffer.alloc(8_192, 97 + (i % 26)));
    const response = await fetch(`${door.url}/upload?x=1`, {
      method: 'POST',
      body: new ReadableStream({
        pull(c) {
          const next = chunks.shift();
          if (next) c.enqueue(next);
          else c.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(response.status).toBe(200);
    const body = (await response.json()) as any;
    expect(body).toMatchObject({ method: 'POST', url: '/upload?x=1', bytes: 64 * 8_192 });
    expect(body.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(body.headers['x-forwarded-proto']).toBe('http');
    expect(body.headers['x-request-id']).toBe(response.headers.get('x-request-id'));
    expect(response.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);

    const streamed = await fetch(`${door.url}/stream`);
    const reader = streamed.body!.getReader();
    const parts: string[] = [];
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(new TextDecoder().decode(value));
    }
    expect(parts.join('')).toBe('part0;part1;part2;part3;part4;');
    expect(parts.length).toBeGreaterThan(1); // not buffered into one piece
  });

  it('strips hop-by-hop headers both ways and keeps duplicate headers', async () => {
    const result = await raw(
      door.port,
      'GET /echo HTTP/1.1\r\nHost: example.com\r\nConnection: keep-alive, X-Hop\r\nX-Hop: secret\r\nKeep-Alive: timeout=9\r\nTE: trailers\r\nProxy-Authorization: Basic x\r\nUpgrade: websocket\r\nX-Keep: yes\r\n\r\n',
    );
    expect(result.status).toBe(200);
    const headers = JSON.parse(result.body).headers as Record<string, string>;
    for (const hop of ['x-hop', 'keep-alive', 'te', 'proxy-authorization', 'upgrade'])
      expect(headers[hop]).toBeUndefined();
    expect(headers['x-keep']).toBe('yes');
    const cookies = await raw(door.port, 'GET /cookies HTTP/1.1\r\nHost: example.com\r\n\r\n');
    expect(cookies.head.match(/^set-cookie: .*$/gim)).toEqual([
      'set-cookie: a=1',
      'set-cookie: b=2',
    ]);
    expect(cookies.head).not.toMatch(/x-secret/i);
    expect(cookies.head).not.toMatch(/timeout=77/i);
  });

  it('answers Expect: 100-continue itself', async () => {
    const result = await raw(
      door.port,
      'POST /echo HTTP/1.1\r\nHost: example.com\r\nExpect: 100-continue\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc',
    );
    expect(result.status).toBe(100);
    expect(result.timedOut).toBe(false);
    expect(result.body).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(result.body).toContain('"bytes":3');
  });

  it('takes X-Forwarded-* and request ids only from trusted proxies', async () => {
    const spoof = {
      'x-forwarded-for': '6.6.6.6',
      'x-forwarded-proto': 'https',
      'x-request-id': 'client-chosen',
    };
    const untrusted = (await (await fetch(`${door.url}/echo`, { headers: spoof })).json()) as any;
    expect(untrusted.headers).toMatchObject({
      'x-forwarded-for': '127.0.0.1',
      'x-forwarded-proto': 'http',
    });
    expect(untrusted.headers['x-request-id']).not.toBe('client-chosen');
    const trusted = (await (
      await fetch(`${trustedDoor.url}/echo`, { headers: spoof })
    ).json()) as any;
    expect(trusted.headers).toMatchObject({
      'x-forwarded-for': '6.6.6.6, 127.0.0.1',
      'x-forwarded-proto': 'https',
      'x-request-id': 'client-chosen',
    });
    const ip = await fetch(`${trustedDoor.url}/web/ip`, {
      headers: { 'x-forwarded-for': '203.0.113.9, 127.0.0.1' },
    });
    expect(ip.headers.get('x-ip')).toBe('203.0.113.9');
    const direct = await fetch(`${door.url}/web/ip`, {
      headers: { 'x-forwarded-for': '203.0.113.9' },
    });
    expect(direct.headers.get('x-ip')).toBe('127.0.0.1');
  });

  it('serves in-process instances with streamed responses', async () => {
    const response = await fetch(`${door.url}/web/x?y=2`, { method: 'PUT', body: 'hello' });
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('in-process PUT /web/x?y=2 body=5');
    expect(response.headers.get('x-path')).toBe('/web/x');
  });

  it('routes by Host header and sets the sticky split cookie', async () => {
    const response = await get(door.port, '/', { host: 'split.example.com' });
    expect(response.body).toBe('a');
    expect(response.headers['set-cookie']).toEqual([expect.stringMatching(/^XSPLIT=250;/)]);
    const sticky = await get(door.port, '/', { host: 'split.example.com', cookie: 'XSPLIT=900' });
    expect(sticky.body).toBe('b');
    expect(sticky.headers['set-cookie']).toBeUndefined();
    const version = await get(door.port, '/', { host: 'a.split.example.com' });
    expect(version.body).toBe('a');
    const missing = await get(door.port, '/', { host: 'v1.ghost.example.com' });
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body)).toMatchObject({ error: { code: 'MODULE_DOES_NOT_EXIST' } });
    const bad = await get(door.port, '/', { host: 'a.b.c.d.example.com' });
    expect(bad.status).toBe(400);
  });

  it('431 for an oversized head, 413 for an oversized body (declared or streamed)', async () => {
    const big = await raw(
      door.port,
      `GET / HTTP/1.1\r\nHost: example.com\r\nX-Big: ${'a'.repeat(8_000)}\r\n\r\n`,
    );
    expect(big.status).toBe(431);
    const declared = await raw(
      door.port,
      'POST /upload HTTP/1.1\r\nHost: example.com\r\nContent-Length: 2000000\r\n\r\nabc',
    );
    expect(declared.status).toBe(413);
    expect(JSON.parse(declared.body)).toMatchObject({ error: { code: 'PAYLOAD_TOO_LARGE' } });
    const before = upstream.seen.length;
    const chunk = Buffer.alloc(300_000, 98);
    const streamed = await fetch(`${door.url}/web/upload`, {
      method: 'POST',
      body: new ReadableStream({
        start(c) {
          for (let i = 0; i < 4; i++) c.enqueue(chunk);
          c.close();
        },
      }),
      duplex: 'half',
    } as RequestInit).catch(e => e);
    if (streamed instanceof Response) expect(streamed.status).toBe(413);
    else expect(streamed).toBeInstanceOf(Error); // the proxy may cut the upload short
    expect(upstream.seen.length).toBe(before);
    // the same through an out-of-process instance: the upload is cut, the instance never sees it whole
    const proxied = await fetch(`${door.url}/upload-big`, {
      method: 'POST',
      body: new ReadableStream({
        start(c) {
          for (let i = 0; i < 4; i++) c.enqueue(chunk);
          c.close();
        },
      }),
      duplex: 'half',
    } as RequestInit).catch(e => e);
    if (proxied instanceof Response) {
      expect(proxied.status).toBe(413);
      expect(await proxied.json()).toMatchObject({ error: { code: 'PAYLOAD_TOO_LARGE' } });
    } else expect(proxied).toBeInstanceOf(Error);
    await expect.poll(() => upstream.aborted(), { timeout: 2_000 }).toBe(1);
    expect(upstream.seen.some(s => s.url === '/upload-big')).toBe(false);
    await expect
      .poll(() => dispatcher.getInstances('default', 'v1')[0]!.inFlight, { timeout: 2_000 })
      .toBe(0);
  });

  it('408 for a client that sends its head too slowly', async () => {
    const strict = await dispatcher.listen({ headersTimeoutMs: 300, requestTimeoutMs: 2_000 });
    try {
      const started = Date.now();
      const slow = await raw(strict.port, 'GET / HTTP/1.1\r\nHost: exa', 5_000);
      expect(slow.status).toBe(408);
      expect(slow.head).toMatch(/connection: close/i);
      expect(Date.now() - started).toBeLessThan(3_000);
    } finally {
      await strict.close();
    }
  });

  it.each([
    [
      'CL + TE',
      'POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: example.com\r\n\r\n',
    ],
    [
      'TE: gzip',
      'POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: gzip\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n',
    ],
    [
      'TE: chunked, identity',
      'POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n',
    ],
    [
      'two TE headers',
      'POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    ],
    [
      'duplicate CL',
      'POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\nContent-Length: 30\r\n\r\nabcGET /smuggled HTTP/1.1\r\n\r\n',
    ],
    [
      'absolute-form target',
      'GET http://evil.example/smuggled HTTP/1.1\r\nHost: example.com\r\n\r\n',
    ],
    ['asterisk target', 'OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n'],
    [
      'two Host headers',
      'GET /smuggled HTTP/1.1\r\nHost: example.com\r\nHost: evil.example\r\n\r\n',
    ],
    [
      'CR LF in the request target (read as HTTP/0.9 plus injected headers)',
      'GET /smuggled\r\nX-Injected: 1 HTTP/1.1\r\nHost: example.com\r\n\r\n',
    ],
    ['HTTP/2.0 request line', 'GET /smuggled HTTP/2.0\r\nHost: example.com\r\n\r\n'],
    [
      'TE: identity, chunked with a request pipelined behind it',
      'POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: example.com\r\n\r\n',
    ],
    [
      'two Host headers with a request pipelined behind it',
      'GET / HTTP/1.1\r\nHost: example.com\r\nHost: evil.example\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: example.com\r\n\r\n',
    ],
  ])('rejects a smuggling attempt: %s', async (_name, request) => {
    const result = await raw(door.port, request);
    expect(result.status).toBe(400);
    expect(result.head).toMatch(/connection: close/i);
    await new Promise(r => setTimeout(r, 20));
    expect(upstream.seen.some(s => s.url.includes('smuggled'))).toBe(false);
  });

  it('503 with Retry-After when no instance frees up in time', async () => {
    holdRelease = undefined;
    const held = fetch(`${door.url}/web/hold`);
    await expect.poll(() => holdRelease !== undefined, { timeout: 2_000 }).toBe(true);
    const busy = await fetch(`${door.url}/web/other`);
    expect(busy.status).toBe(503);
    expect(Number(busy.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await busy.json()).toMatchObject({
      error: { code: 'NO_CAPACITY' },
      requestId: busy.headers.get('x-request-id'),
    });
    holdRelease!();
    expect((await held).status).toBe(200);
  });

  it('502 when the instance is unreachable', async () => {
    const response = await get(door.port, '/', { host: 'dead.example.com' });
    expect(response.status).toBe(502);
    expect(JSON.parse(response.body)).toMatchObject({ error: { code: 'BACKEND_ERROR' } });
  });

  it('aborts the upstream and frees the slot when the client goes away', async () => {
    await new Promise<void>(resolve => {
      const req = httpRequest(`${door.url}/endless`, res => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.end();
    });
    await expect.poll(() => upstream.active(), { timeout: 2_000 }).toBe(0);
    await expect
      .poll(() => dispatcher.getInstances('default', 'v1')[0]!.inFlight, { timeout: 2_000 })
      .toBe(0);
  });

  it('refuses more than 1 000 header lines with 431, also when a second Host hides behind 2 100', async () => {
    const fillers = (n: number) => Array.from({ length: n }, (_, i) => `x:${i % 10}\r\n`).join('');
    for (const hidden of ['Host: evil\r\n', 'Content-Length: 5\r\n', '']) {
      const res = await raw(
        trustedDoor.port,
        `GET /many HTTP/1.1\r\nHost: x\r\n${fillers(2_100)}${hidden}\r\n`,
      );
      expect(res.status).toBe(431);
      expect(res.body).toContain('TOO_MANY_HEADERS');
      expect(res.body).toContain('expected at most 1000');
    }
    expect(
      (await raw(trustedDoor.port, `GET /ok HTTP/1.1\r\nHost: x\r\n${fillers(998)}\r\n`)).status,
    ).toBe(200);
  });

  describe('admin API', () => {
    const admin = (path: string, init: RequestInit = {}, token: string | null = TOKEN) =>
      fetch(`${door.url}/_x/admin${path}`, {
        ...init,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          'content-type': 'application/json',
          ...(init.headers as object),
        },
      });

    it('refuses calls without the token or with a wrong one', async () => {
      const none = await admin('/modules', {}, null);
      expect(none.status).toBe(401);
      expect(none.headers.get('www-authenticate')).toBe('Bearer');
      const wrong = await admin('/modules', {}, 'admin-token-0123456789abcdeX');
      expect(wrong.status).toBe(403);
      const short = await admin('/modules', {}, 'x');
      expect(short.status).toBe(403);
      const stop = await admin('/modules/admin/versions/v1/stop', { method: 'POST' }, 'nope');
      expect(stop.status).toBe(403);
      expect(dispatcher.getInstances('admin', 'v1')[0]!.state).toBe('ready');
    });

    it('reads the auth scheme case-insensitively (RFC 9110)', async () => {
      for (const scheme of ['bearer', 'BEARER', 'Bearer']) {
        const res = await admin('/modules', { headers: { authorization: `${scheme} ${TOKEN}` } });
        expect(res.status).toBe(200);
      }
    });

    it('answers a malformed percent-encoding in the path with 400, not 500', async () => {
      const bad = await admin('/modules/%E0%A4%A/versions/v1/instances');
      expect(bad.status).toBe(400);
      expect(await bad.json()).toMatchObject({ error: { code: 'INVALID_REQUEST' } });
    });

    it('lists modules and instances, sets instances, stops and starts versions, explains', async () => {
      expect(await (await admin('/modules')).json()).toMatchObject({
        modules: expect.arrayContaining([
          { name: 'admin', defaultVersion: 'v1', versions: ['v1'] },
        ]),
      });
      const set = await admin('/modules/admin/versions/v1/instances', {
        method: 'PUT',
        body: JSON.stringify({ instances: 2 }),
      });
      expect(await set.json()).toEqual({ instances: 2 });
      const list = (await (await admin('/modules/admin/versions/v1/instances')).json()) as any;
      expect(list.instances.map((i: { id: string; state: string }) => [i.id, i.state])).toEqual([
        ['0', 'ready'],
        ['1', 'ready'],
      ]);
      expect((await admin('/modules/admin/versions/v1/stop', { method: 'POST' })).status).toBe(200);
      const stopped = await get(door.port, '/', { host: 'admin.example.com' });
      expect(stopped.status).toBe(503);
      expect(JSON.parse(stopped.body)).toMatchObject({
        error: { code: 'VERSION_STOPPED', message: expect.stringContaining('admin/v1 is stopped') },
      });
      const again = await admin('/modules/admin/versions/v1/stop', { method: 'POST' });
      expect(again.status).toBe(409);
      expect(await again.json()).toMatchObject({ error: { code: 'VERSION_ALREADY_STOPPED' } });
      expect((await admin('/modules/admin/versions/v1/start', { method: 'POST' })).status).toBe(
        200,
      );
      expect((await get(door.port, '/', { host: 'admin.example.com' })).body).toBe('admin module');
      const explain = await (await admin('/explain?url=/web/a&host=example.com')).json();
      expect(explain).toMatchObject({ module: 'web', moduleSource: 'rule' });
      expect((await admin('/stats')).status).toBe(200);
      expect((await admin('/modules/ghost/versions/v1/instances')).status).toBe(404);
      expect((await admin('/nothing')).status).toBe(404);
      const bad = await admin('/modules/admin/versions/v1/instances', {
        method: 'PUT',
        body: '{"instances":"x"}',
      });
      expect(bad.status).toBe(400);
    });

    it('is off without a token', async () => {
      const plain = await dispatcher.listen();
      try {
        const response = await fetch(`${plain.url}/_x/admin/modules`);
        expect(response.status).toBe(200); // routed like any path: to the default module
        expect(((await response.json()) as any).url).toBe('/_x/admin/modules');
      } finally {
        await plain.close();
      }
      await expect(dispatcher.listen({ admin: { token: 'short' } })).rejects.toMatchObject({
        code: 'INVALID_CONFIG',
      });
    });

    it.each([[1e9], [-1], [1.5], ['3'], [null]])(
      'answers {"instances": %j} with 400 INVALID_REQUEST naming the field, not 500',
      async count => {
        const res = await admin('/modules/admin/versions/v1/instances', {
          method: 'PUT',
          body: JSON.stringify({ instances: count }),
        });
        expect(res.status).toBe(400);
        const body = (await res.json()) as { error: { code: string; message: string } };
        expect(body.error.code).toBe('INVALID_REQUEST');
        expect(body.error.message).toMatch(/instances/);
        expect(body.error.message).toContain(JSON.stringify(count));
        expect(dispatcher.getNumInstances('admin', 'v1')).toBeLessThanOrEqual(2);
      },
    );

    it('answers a declared admin body over 64 KiB with 413 before reading it', async () => {
      const res = await raw(
        door.port,
        `PUT /_x/admin/modules/admin/versions/v1/instances HTTP/1.1\r\nHost: x\r\n` +
          `Authorization: Bearer ${TOKEN}\r\nContent-Length: 1000000\r\n\r\n{"instances":`,
      );
      expect(res.status).toBe(413);
      expect(res.body).toContain('PAYLOAD_TOO_LARGE');
    });

    it('locks out a client address after maxFailures wrong tokens (429, Retry-After); right tokens cost nothing', async () => {
      const locked = await dispatcher.listen({
        admin: { token: TOKEN, maxFailures: 3, failureWindowMs: 60_000 },
      });
      /** A call from `localAddress` (any 127/8 address reaches the loopback listener). */
      const call = (token: string, localAddress = '127.0.0.1') =>
        new Promise<{ status: number; headers: IncomingHttpHeaders; body: string }>(
          (resolve, reject) => {
            const req = httpRequest(
              {
                host: '127.0.0.1',
                port: locked.port,
                localAddress,
                path: '/_x/admin/modules',
                headers: { authorization: `Bearer ${token}` },
              },
              res => {
                let body = '';
                res.setEncoding('utf8').on('data', c => (body += c));
                res.on('end', () =>
                  resolve({ status: res.statusCode!, headers: res.headers, body }),
                );
              },
            );
            req.on('error', reject);
            req.end();
          },
        );
      try {
        for (let i = 0; i < 20; i++) expect((await call(TOKEN)).status).toBe(200);
        for (let i = 0; i < 3; i++)
          expect((await call(`wrong-token-${i}-0123456789`)).status).toBe(403);
        const refused = await call('wrong-token-again-0123456789');
        expect(refused.status).toBe(429);
        expect(JSON.parse(refused.body)).toMatchObject({ error: { code: 'TOO_MANY_ATTEMPTS' } });
        expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
        expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(20);
        // the lockout answers before the token is compared: the right token tells nothing either
        expect((await call(TOKEN)).status).toBe(429);
        // another address is not locked out
        expect((await call(TOKEN, '127.0.0.2')).status).toBe(200);
      } finally {
        await locked.close();
      }
    });
  });

  it('answers any request with a proper status, never crashing nor hanging (property)', async () => {
    const token = fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}$/);
    const method = fc.oneof(
      fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'HEAD'),
      token,
      fc.constantFrom('G T', ''),
    );
    const path = fc.oneof(
      fc.constantFrom(
        '/',
        '/web/x',
        '/_ah/start',
        '/_x/admin/modules',
        '*',
        'http://x/',
        '/%zz',
        '/a?b=c#d',
      ),
      fc.string({ maxLength: 30 }).map(s => '/' + s.replace(/[\s]/g, '')),
      fc.string({ maxLength: 10 }),
    );
    const header = fc.tuple(
      fc.oneof(
        token,
        fc.constantFrom(
          'Host',
          'Cookie',
          'Transfer-Encoding',
          'Content-Length',
          'Connection',
          'X-Forwarded-For',
          'Authorization',
        ),
      ),
      fc.oneof(
        fc.string({ maxLength: 40 }),
        fc.constantFrom(
          'chunked',
          '0',
          '5',
          '-1',
          'web.example.com',
          'a.b.c.d.example.com',
          'XSPLIT=5',
          'close',
          'Bearer x',
        ),
      ),
    );
    const body = fc.oneof(
      fc.constant(''),
      fc.string({ maxLength: 50 }),
      fc.constant('0\r\n\r\n'),
      fc.constant('5\r\nhello\r\n0\r\n\r\n'),
    );
    const statuses = new Map<number, number>();
    const allowed = new Set([200, 400, 401, 403, 404, 408, 409, 413, 431, 502, 503, 504]);
    // Random requests are mostly refused (about 4% pass); one in five is a plain valid request, so
    // the check below that some reached the instance cannot fail by chance.
    const request = fc.oneof(
      { weight: 4, arbitrary: fc.tuple(method, path, fc.array(header, { maxLength: 6 }), body) },
      {
        weight: 1,
        arbitrary: fc.tuple(
          fc.constant('GET'),
          fc.constant('/web/ok'),
          fc.constant<[string, string][]>([]),
          fc.constant(''),
        ),
      },
    );
    await fc.assert(
      fc.asyncProperty(request, async ([m, p, hs, b]) => {
        const lines = hs.map(([n, v]) => `${n}: ${v.replace(/[\r\n]/g, '')}`);
        const text = `${m} ${p} HTTP/1.1\r\nHost: example.com\r\n${lines.join('\r\n')}${lines.length ? '\r\n' : ''}Connection: close\r\n\r\n${b}`;
        const result = await raw(door.port, text, 8_000); // an unterminated body waits for requestTimeoutMs (2 s)
        expect(result.timedOut).toBe(false);
        statuses.set(result.status, (statuses.get(result.status) ?? 0) + 1);
        if (result.status !== 0) expect(allowed).toContain(result.status);
      }),
      { numRuns: 120 },
    );
    expect(statuses.get(200)).toBeGreaterThan(0); // not everything was refused
    expect(statuses.has(502)).toBe(false); // nothing the client sent is blamed on the instance
    // still serving
    expect((await fetch(`${door.url}/web/ok`)).status).toBe(200);
  }, 60_000);
});

describe('HTTP front door: pipelined requests on a connection that closes (regression)', () => {
  it('a response still queued behind another is closed with the connection, so close() does not wait out drainTimeoutMs', async () => {
    let streamed = 0;
    const dispatcher = createDispatcher({
      host: 'example.com',
      modules: {
        default: {
          versions: {
            v1: {
              backend: inProcess(async req => {
                if (req.url === '/slow') await new Promise(r => setTimeout(r, 200));
                // a large streamed body: its writes wait for 'drain' or 'close'
                async function* body() {
                  for (let i = 0; i < 64; i++) {
                    streamed++;
                    yield new Uint8Array(64 * 1024);
                  }
                }
                return { status: 200, body: req.url === '/slow' ? 'ok' : body() };
              }),
            },
          },
        },
      },
    });
    const door = await dispatcher.listen({ drainTimeoutMs: 5_000 });
    try {
      const socket = connect(door.port, '127.0.0.1');
      await once(socket, 'connect');
      socket.write(
        'GET /slow HTTP/1.1\r\nHost: example.com\r\n\r\nGET /big HTTP/1.1\r\nHost: example.com\r\n\r\n',
      );
      await new Promise(r => setTimeout(r, 50));
      socket.destroy(); // before the first response: the second one is still queued
      await new Promise(r => setTimeout(r, 400));
      const started = performance.now();
      await door.close();
      expect(performance.now() - started).toBeLessThan(1_000);
      expect(streamed).toBeLessThan(64); // the queued response's work was aborted
    } finally {
      await dispatcher.close();
    }
  });
});

describe('HTTP front door: the request deadline', () => {
  it('an in-process handler that never answers gets 504 by requestTimeoutMs, named in X-Served-By', async () => {
    const requestTimeoutMs = 500;
    const dispatcher = createDispatcher({
      requestTimeoutMs,
      modules: {
        default: {
          versions: {
            v1: { backend: inProcess(() => new Promise<never>(() => {})) },
          },
        },
      },
    });
    const door = await dispatcher.listen({});
    try {
      const started = performance.now();
      const res = await fetch(`${door.url}/never`, { signal: AbortSignal.timeout(10_000) });
      const ms = performance.now() - started;
      expect(res.status).toBe(504);
      expect(await res.json()).toMatchObject({ error: { code: 'DEADLINE_EXCEEDED' } });
      expect(res.headers.get('x-served-by')).toBe('default/v1/0');
      expect(ms).toBeGreaterThanOrEqual(requestTimeoutMs - 50);
      expect(ms).toBeLessThan(requestTimeoutMs + 1_000);
    } finally {
      await door.close();
      await dispatcher.close({ drainTimeoutMs: 100 });
    }
  });

  it("an in-process handler's signal reports the deadline even when first read after it passed", async () => {
    const requestTimeoutMs = 200;
    let seen: unknown;
    const dispatcher = createDispatcher({
      requestTimeoutMs,
      modules: {
        default: {
          versions: {
            v1: {
              backend: inProcess(async request => {
                // the signal is read only after the deadline passed (created lazily)
                await new Promise(r => setTimeout(r, requestTimeoutMs + 200));
                seen = request.signal.aborted ? request.signal.reason : 'not aborted';
                return { body: 'late' };
              }),
            },
          },
        },
      },
    });
    const door = await dispatcher.listen({});
    try {
      const res = await fetch(`${door.url}/late`, { signal: AbortSignal.timeout(10_000) });
      expect(res.status).toBe(504);
      await new Promise(r => setTimeout(r, 400));
      expect(seen).toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    } finally {
      await door.close();
      await dispatcher.close({ drainTimeoutMs: 100 });
    }
  });

  it('request deadlines share one clock timer instead of arming one per request', async () => {
    let armed = 0;
    const clock = {
      now: () => performance.now(),
      setTimeout: (callback: () => void, ms: number) => {
        armed++;
        return setTimeout(callback, ms);
      },
      clearTimeout: (handle: unknown) => clearTimeout(handle as NodeJS.Timeout),
    };
    const upstream = createServer((_req, res) => res.end('ok'));
    await new Promise<void>(r => upstream.listen(0, '127.0.0.1', r));
    const port = (upstream.address() as AddressInfo).port;
    const dispatcher = createDispatcher({
      clock,
      modules: {
        default: { versions: { v1: { backend: remote([`http://127.0.0.1:${port}`]) } } },
        local: { versions: { v1: { backend: inProcess(() => ({ body: 'ok' })) } } },
      },
      rules: [{ url: '*/local/*', module: 'local' }],
    });
    const door = await dispatcher.listen({});
    try {
      for (const path of ['/remote', '/local/x']) {
        await (await fetch(`${door.url}${path}`)).text(); // warm: instances up
        const before = armed;
        for (let i = 0; i < 20; i++) {
          const res = await fetch(`${door.url}${path}`);
          expect(res.status).toBe(200);
          expect(await res.text()).toBe('ok');
        }
        // one timer per request would arm 20; the shared queue arms at most one more
        expect(armed - before).toBeLessThanOrEqual(2);
      }
    } finally {
      await door.close();
      await dispatcher.close({ drainTimeoutMs: 100 });
      upstream.close();
    }
  });
});

describe('HTTP front door: upstream pipelining', () => {
  it('upstream.pipelining sends concurrent GETs over fewer connections; default one per request', async () => {
    const sockets = new Set<unknown>();
    const upstream = createServer((req, res) => {
      sockets.add(req.socket);
      setTimeout(() => res.end(req.url), 30);
    });
    await new Promise<void>(r => upstream.listen(0, '127.0.0.1', r));
    const origin = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    const connectionsFor = async (pipelining: number | undefined) => {
      sockets.clear();
      const dispatcher = createDispatcher({
        ...(pipelining === undefined ? {} : { upstream: { pipelining } }),
        modules: { default: { versions: { v1: { backend: remote([origin]) } } } },
      });
      const door = await dispatcher.listen({});
      try {
        await (await fetch(`${door.url}/warm`)).text(); // the instance up, one idle connection
        sockets.clear();
        const bodies = await Promise.all(
          Array.from({ length: 8 }, async (_, i) => {
            const res = await fetch(`${door.url}/r${i}`);
            expect(res.status).toBe(200);
            return res.text();
          }),
        );
        expect(bodies).toEqual(Array.from({ length: 8 }, (_, i) => `/r${i}`));
        return sockets.size;
      } finally {
        await door.close();
        await dispatcher.close({ drainTimeoutMs: 100 });
      }
    };
    try {
      // one request per connection: about one each (a request may reuse one freed meanwhile)
      expect(await connectionsFor(undefined)).toBeGreaterThanOrEqual(4);
      expect(await connectionsFor(8)).toBeLessThanOrEqual(2);
    } finally {
      upstream.close();
    }
  });

  it('health probes do not wait behind requests pipelined on a connection', async () => {
    const probes: number[] = [];
    const upstream = createServer((req, res) => {
      if (req.url === '/_ah/health') {
        probes.push(performance.now());
        res.end('ok');
      } else if (req.url === '/slow') setTimeout(() => res.end('slow'), 1_000);
      else res.end('fast');
    });
    await new Promise<void>(r => upstream.listen(0, '127.0.0.1', r));
    const origin = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    const dispatcher = createDispatcher({
      upstream: { pipelining: 8 },
      modules: {
        default: {
          versions: {
            v1: {
              backend: remote([origin]),
              healthCheck: { intervalMs: 100, timeoutMs: 5_000 },
            },
          },
        },
      },
    });
    const door = await dispatcher.listen({});
    try {
      await (await fetch(`${door.url}/fast`)).text();
      const started = performance.now();
      const slow = Promise.all(
        Array.from({ length: 4 }, async () => (await fetch(`${door.url}/slow`)).text()),
      );
      expect(await slow).toEqual(['slow', 'slow', 'slow', 'slow']);
      const finished = performance.now();
      // pipelined behind the slow requests, a probe would reach the instance only after them
      const during = probes.filter(t => t > started + 100 && t < finished - 200);
      expect(during.length).toBeGreaterThan(0);
    } finally {
      await door.close();
      await dispatcher.close({ drainTimeoutMs: 100 });
      upstream.close();
    }
  });

  it('refuses a bad upstream.pipelining, naming it', () => {
    expect(() =>
      createDispatcher({
        upstream: { pipelining: 0 },
        modules: { default: { versions: { v1: { backend: remote(['http://127.0.0.1:1']) } } } },
      }),
    ).toThrow(/upstream\.pipelining must be a positive integer, got 0/);
  });
});
