import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isXError, XError } from '@x/resilience';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { asyncBackoff } from './backoffPolicy.js';
import { BrokerUnavailableError } from './errors.js';
import {
  httpEntrypoint,
  httpStatusFor,
  HttpEntrypoint,
  type HttpEntrypointOptions,
} from './httpEntrypoint.js';
import { memoryQueue } from './memoryQueue.js';
import type { Outcome } from './outcome.js';
import { route, type Route } from './route.js';
import { RunnerContext } from './runnerContext.js';
import { json, schema } from './translator.js';
import { deferred, httpRequest } from './test/helpers.js';

interface Command {
  do: 'ok' | 'none' | 'text' | 'bytes' | 'fail' | 'teapot' | 'slow' | 'code';
  code?: string;
}
const isCommand = (x: unknown): x is Command =>
  typeof x === 'object' && x !== null && typeof (x as { do?: unknown }).do === 'string';

const routes: Route<any, any, any, any>[] = [];
afterEach(async () => {
  await Promise.all(routes.splice(0).map(r => r.stop({ timeoutMs: 1_000 })));
});

async function serve(options: HttpEntrypointOptions = {}, timeoutMs?: number) {
  const http = new HttpEntrypoint<Buffer>({ port: 0, path: '/cmd', ...options });
  const r = route({
    entrypoint: http,
    translators: [json(), schema(isCommand)],
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
    target: async (cmd: Command, ctx) => {
      switch (cmd.do) {
        case 'ok':
          return { ok: true, path: (ctx.meta.http as { path: string }).path };
        case 'none':
          return undefined;
        case 'text':
          return 'plain';
        case 'bytes':
          return Buffer.from([1, 2, 3]);
        case 'fail':
          throw new Error('secret internals');
        case 'code':
          throw new XError(cmd.code ?? 'X', `failed with ${cmd.code}`);
        case 'teapot':
          throw Object.assign(new Error("I'm a teapot"), { status: 418 });
        case 'slow':
          await new Promise((_, reject) =>
            ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error)),
          );
      }
      return undefined;
    },
  });
  routes.push(r);
  await r.start();
  return { http, url: `${http.url}/cmd`, route: r };
}

describe('httpEntrypoint', () => {
  it.each([
    ['UNAVAILABLE', 503],
    ['OVERLOADED', 503],
    ['CIRCUIT_OPEN', 503],
    ['CONNECTION_ERROR', 502],
    ['DEADLINE_EXCEEDED', 504],
    ['INVALID_REQUEST', 400],
    ['RATE_LIMITED', 429],
    ['SOMETHING_ELSE', 500],
  ])('answers a terminal %s failure (e.g. a worker-rpc error) with %i', async (code, status) => {
    const { url } = await serve();
    const answer = await httpRequest(url, {
      body: JSON.stringify({ do: 'code', code }),
      headers: { 'content-type': 'application/json' },
    });
    expect(answer.status).toBe(status);
    expect(answer.json()).toMatchObject({ error: { code } });
  });

  it('maps outcomes to statuses', async () => {
    const { url } = await serve({}, 100);
    const call = (body: unknown) =>
      httpRequest(url, {
        body: JSON.stringify(body),
        headers: { 'content-type': 'application/json' },
      });

    const ok = await call({ do: 'ok' });
    expect([ok.status, ok.headers['content-type'], ok.json()]).toEqual([
      200,
      'application/json',
      { ok: true, path: '/cmd' },
    ]);
    expect((await call({ do: 'none' })).status).toBe(204);
    const text = await call({ do: 'text' });
    expect([text.status, text.headers['content-type'], text.body]).toEqual([
      200,
      'text/plain; charset=utf-8',
      'plain',
    ]);
    const bytes = await call({ do: 'bytes' });
    expect([bytes.status, bytes.headers['content-type'], bytes.headers['content-length']]).toEqual([
      200,
      'application/octet-stream',
      '3',
    ]);
    const fail = await call({ do: 'fail' });
    expect([fail.status, fail.json()]).toEqual([
      500,
      { error: { code: 'INTERNAL', message: 'internal error' } },
    ]);
    const teapot = await call({ do: 'teapot' });
    expect([teapot.status, teapot.json().error.message]).toEqual([418, "I'm a teapot"]);
    const slow = await call({ do: 'slow' });
    expect([slow.status, slow.json().error.code]).toEqual([504, 'TIMEOUT']);
  });

  it('rejects malformed input with 400 (bad JSON, wrong shape, bad UTF-8) before the target runs', async () => {
    const { url } = await serve();
    for (const body of ['{"do":', 'null', '[]', '', '{"do": 5}']) {
      const res = await httpRequest(url, { body });
      expect(res.status, body).toBe(400);
      expect(res.json().error.code).toBe('TRANSLATION_FAILED');
      expect(res.json().error.message.length).toBeGreaterThan(0);
    }
    const badUtf8 = await httpRequest(url, { body: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]) });
    expect([badUtf8.status, badUtf8.json().error.message]).toEqual([
      400,
      'json: the bytes are not valid UTF-8',
    ]);
  });

  it('answers 405 to another method, 413 to a body too large (declared or streamed), 408 to a body that never ends', async () => {
    const { url } = await serve({ maxBodyBytes: 64, bodyTimeoutMs: 100 });
    const get = await httpRequest(url, { method: 'GET' });
    expect([get.status, get.headers.allow, get.json().error.code]).toEqual([
      405,
      'POST',
      'METHOD_NOT_ALLOWED',
    ]);
    const declared = await httpRequest(url, { body: 'x'.repeat(65) });
    expect([declared.status, declared.json().error.code]).toEqual([413, 'PAYLOAD_TOO_LARGE']);

    const streamed = await new Promise<number>((resolve, reject) => {
      const req = request(
        url,
        { method: 'POST', headers: { 'transfer-encoding': 'chunked' }, agent: false },
        res => {
          res.resume();
          resolve(res.statusCode!);
        },
      );
      req.on('error', reject);
      req.write('x'.repeat(40));
      req.write('x'.repeat(40));
    });
    expect(streamed).toBe(413);

    const stalled = await new Promise<number>((resolve, reject) => {
      const req = request(
        url,
        { method: 'POST', headers: { 'content-length': '10' }, agent: false },
        res => {
          res.resume();
          resolve(res.statusCode!);
        },
      );
      req.on('error', reject);
      req.write('ab');
    });
    expect(stalled).toBe(408);
  });

  it('mounts in an existing server: handle() returns false for other paths, handler answers 404', async () => {
    const http = httpEntrypoint({ path: '/mounted', method: '*', message: 'query' });
    const r = route({
      entrypoint: http,
      target: (q: Readonly<Record<string, string>>, ctx) => ({
        q,
        method: (ctx.meta.http as { method: string }).method,
      }),
    });
    routes.push(r);
    await r.start();
    const server: Server = createServer((req, res) => {
      if (!http.handle(req, res)) {
        res.statusCode = 418;
        res.end();
      }
    });
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const hit = await httpRequest(`${base}/mounted?a=1&b=two`, { method: 'GET' });
    expect([hit.status, hit.json()]).toEqual([200, { q: { a: '1', b: 'two' }, method: 'GET' }]);
    expect((await httpRequest(`${base}/elsewhere`, { method: 'GET' })).status).toBe(418);
    await new Promise(resolve => server.close(resolve));

    const standalone = createServer(http.handler);
    await new Promise<void>(resolve => standalone.listen(0, '127.0.0.1', resolve));
    const other = await httpRequest(
      `http://127.0.0.1:${(standalone.address() as AddressInfo).port}/nope`,
      { method: 'GET' },
    );
    expect(other.status).toBe(404);
    await new Promise(resolve => standalone.close(resolve));
  });

  it('a client that disconnects aborts ctx.signal with CANCELLED', async () => {
    const aborted = deferred<unknown>();
    const started = deferred();
    const http = httpEntrypoint({ port: 0 });
    const r = route({
      entrypoint: http,
      target: (_b: Buffer, ctx) =>
        new Promise((_, reject) => {
          started.resolve();
          ctx.signal.addEventListener('abort', () => {
            aborted.resolve(ctx.signal.reason);
            reject(ctx.signal.reason as Error);
          });
        }),
    });
    routes.push(r);
    await r.start();
    const req = request(http.url, { method: 'POST', agent: false });
    req.on('error', () => {});
    req.end('x');
    await started.promise;
    req.destroy();
    expect(isXError(await aborted.promise, 'CANCELLED')).toBe(true);
  });

  it('answers 202 when an async backoff deferred the work, 503 with retry-after when overloaded', async () => {
    const queue = memoryQueue<Buffer>();
    const gate = deferred();
    const http = httpEntrypoint({ port: 0 });
    let calls = 0;
    const r = route({
      entrypoint: http,
      target: async (b: Buffer) => {
        calls++;
        if (b.toString() === 'flaky') throw new Error('later');
        await gate.promise;
        return 'ok';
      },
      backoff: asyncBackoff({ via: queue, delay: 60_000 }),
    });
    new RunnerContext({ routes: [r], maxWorkers: 1, maxQueued: 0 });
    routes.push(r);
    await r.start();
    const deferredRes = await httpRequest(http.url, { body: 'flaky' });
    expect([deferredRes.status, deferredRes.json()]).toEqual([
      202,
      { deferred: { attempt: 1, delayMs: 60_000, via: 'memory' } },
    ]);
    expect(queue.delayed).toBe(1);

    const blocking = httpRequest(http.url, { body: 'block' });
    while (calls < 2) await new Promise(resolve => setTimeout(resolve, 5));
    const overloaded = await httpRequest(http.url, { body: 'x' });
    expect([
      overloaded.status,
      overloaded.headers['retry-after'],
      overloaded.json().error.code,
    ]).toEqual([503, '1', 'BULKHEAD_FULL']);
    gate.resolve();
    expect((await blocking).status).toBe(200);
  });

  it('a terminal 503 whose error carries retryAfterMs (BROKER_UNAVAILABLE) answers retry-after in seconds', async () => {
    const http = httpEntrypoint({ port: 0, exposeErrors: true });
    const r = route({
      entrypoint: http,
      target: async () => {
        throw new BrokerUnavailableError('redis', 'redis://h:1', 'publish', 'down', 2_500);
      },
    });
    routes.push(r);
    await r.start();
    const res = await httpRequest(http.url, { body: 'x' });
    expect([res.status, res.headers['retry-after'], res.json().error.code]).toEqual([
      503,
      '3',
      'BROKER_UNAVAILABLE',
    ]);
  });

  it('while stopping: in-flight requests finish, new ones get 503 (mounted) or are refused (own server)', async () => {
    const gate = deferred();
    const started = deferred();
    const mounted = httpEntrypoint({ path: '/m' });
    const r = route({
      entrypoint: mounted,
      target: async () => {
        started.resolve();
        await gate.promise;
        return 'finished';
      },
    });
    await r.start();
    const server = createServer(mounted.handler);
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/m`;
    const inflight = httpRequest(url, { body: 'a' });
    await started.promise;
    const stopping = r.stop({ timeoutMs: 5_000 });
    const late = await httpRequest(url, { body: 'b' });
    expect([late.status, late.headers.connection]).toEqual([503, 'close']);
    gate.resolve();
    expect(await inflight).toMatchObject({ status: 200, body: 'finished' });
    expect(await stopping).toMatchObject({ completed: 1, killed: [], timedOut: false });
    await new Promise(resolve => server.close(resolve));
  });

  it('property: any body gets 200 or 400, never a crash, a 500 or a hang', async () => {
    const { url } = await serve();
    const bodies = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.uint8Array({ maxLength: 200 }).map(a => Buffer.from(a)),
      fc.jsonValue({ maxDepth: 4 }).map(v => JSON.stringify(v)),
      fc.constantFrom('ok', 'none', 'text').map(d => JSON.stringify({ do: d, extra: 1 })),
    );
    await fc.assert(
      fc.asyncProperty(bodies, async body => {
        const res = await httpRequest(url, { body });
        expect([200, 204, 400]).toContain(res.status);
        if (res.status === 400) expect(res.json().error.code).toBe('TRANSLATION_FAILED');
      }),
      { numRuns: 150 },
    );
    expect((await httpRequest(url, { body: '{"do":"ok"}' })).status).toBe(200);
  });

  it('httpStatusFor covers every outcome', () => {
    const meta = {};
    const cases: Array<[Outcome, number]> = [
      [{ kind: 'success', value: 1, attempts: 1 }, 200],
      [{ kind: 'success', value: undefined, attempts: 1 }, 204],
      [{ kind: 'deferred', retryAt: 1, delayMs: 1, attempt: 1, via: 'q', error: null }, 202],
      [{ kind: 'cancelled', reason: null, started: false, attempts: 0, meta }, 503],
      [
        {
          kind: 'failure',
          error: new Error('x'),
          terminal: false,
          reason: 'overloaded',
          attempts: 0,
          meta,
        },
        503,
      ],
      [
        {
          kind: 'failure',
          error: Object.assign(new Error('x'), { statusCode: 409 }),
          terminal: true,
          reason: 'no-backoff',
          attempts: 1,
          meta,
        },
        409,
      ],
      [
        {
          kind: 'failure',
          error: Object.assign(new Error('x'), { status: 200 }),
          terminal: true,
          reason: 'no-backoff',
          attempts: 1,
          meta,
        },
        500,
      ],
      [
        {
          kind: 'failure',
          error: 'a string',
          terminal: true,
          reason: 'no-backoff',
          attempts: 1,
          meta,
        },
        500,
      ],
      [
        { kind: 'failure', error: null, terminal: true, reason: 'no-backoff', attempts: 1, meta },
        500,
      ],
    ];
    for (const [outcome, status] of cases) expect(httpStatusFor(outcome)).toBe(status);
  });

  it('rejects bad options with INVALID_OPTIONS', () => {
    for (const options of [
      { path: 'no-slash' },
      { maxBodyBytes: -1 },
      { message: 'xml' },
      { port: 1.5 },
      { prot: 1 },
    ])
      expect(() => httpEntrypoint(options as never)).toThrow(
        expect.objectContaining({ code: 'INVALID_OPTIONS' }),
      );
  });
});
