// toto compatibility: our client against workers that speak toto's own frames, and toto-style
// clients against our worker.
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { deflateSync, gunzipSync, gzipSync, inflateSync } from 'node:zlib';
import { request as undiciRequest } from 'undici';
import { freePort, startTestServer, waitFor } from '@x/testkit';
import { Dealer, Reply } from 'zeromq';
import { afterEach, describe, expect, test } from 'vitest';
import { asynchronous } from './asynchronous.js';
import { deflate } from './compression.js';
import { isWorkerRpcError, type WorkerRpcError } from './errors.js';
import { httpTransport } from './httpTransport.js';
import { createQueueDevice } from './queueDevice.js';
import { startHttpWorker, startZmqWorker } from './test/helpers.js';
import { createWorker } from './worker.js';
import { createWorkerConnection } from './workerConnection.js';
import { optionsFromEnv } from './optionsFromEnv.js';
import { zmqTransport } from './zmqTransport.js';
import { zmqWorkerTransport } from './zmqWorkerTransport.js';

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function rejection(promise: Promise<unknown>): Promise<WorkerRpcError> {
  try {
    await promise;
  } catch (error) {
    if (isWorkerRpcError(error)) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

type TotoMethod = ((parameters: any) => unknown) & { asynchronous?: boolean };

/**
 * toto's `TotoWorker.start()` loop, faithfully: a REP socket connected to the router's backend,
 * `[message_id, body] = recv_multipart()`, `loads(decompress(body))`, a getattr chain over the
 * method name, `[id]` first for `@asynchronous` methods, errors as `{'error': {code, value}}`.
 * JSON serialization; `compress`/`decompress` = Python's zlib (zlib format, our `deflate`).
 */
function startTotoWorker(
  backend: string,
  methods: Record<string, Record<string, TotoMethod>>,
  compression = false,
) {
  const socket = new Reply({ linger: 0 });
  socket.connect(backend);
  const seen: string[] = [];
  const loads = (b: Buffer) => JSON.parse((compression ? inflateSync(b) : b).toString());
  const dumps = (v: unknown) =>
    compression ? deflateSync(Buffer.from(JSON.stringify(v))) : Buffer.from(JSON.stringify(v));
  void (async () => {
    for await (const [messageId, body] of socket) {
      seen.push(messageId!.toString());
      try {
        const data = loads(body!);
        let method: any = methods;
        for (const part of String(data.method).split('.')) {
          if (!Object.prototype.hasOwnProperty.call(method, part))
            throw { code: 1000, value: `'module' object has no attribute '${part}'` };
          method = method[part];
        }
        if ((method as TotoMethod).asynchronous) {
          await socket.send([messageId!]);
          (method as TotoMethod)(data.parameters);
        } else {
          await socket.send([messageId!, dumps(await (method as TotoMethod)(data.parameters))]);
        }
      } catch (e) {
        const error =
          typeof e === 'object' && e !== null && 'code' in e ? e : { code: 1000, value: String(e) };
        await socket.send([messageId!, dumps({ error })]);
      }
    }
  })().catch(() => {});
  cleanup.push(() => socket.close());
  return { seen };
}

describe('toto-compatible ZeroMQ mode', () => {
  test('round trip through a toto QUEUE device to a toto REP worker', async () => {
    const device = await createQueueDevice({
      frontend: `tcp://127.0.0.1:${await freePort()}`,
      backend: `tcp://127.0.0.1:${await freePort()}`,
    }).start();
    cleanup.push(() => device.close());
    let pushed: unknown;
    const async = Object.assign((p: unknown) => void (pushed = p), { asynchronous: true });
    const toto = startTotoWorker(device.backendAddresses[0]!, {
      account: { create: (p: { name: string }) => ({ id: 1, name: p.name }) },
      queue: { push: async },
      secure: {
        op: () => {
          throw { code: 1004, value: 'not authorized' };
        },
      },
    });
    const conn = createWorkerConnection({
      addresses: device.frontendAddresses[0]!,
      transport: zmqTransport({ protocol: 'toto' }),
      timeoutMs: 3_000,
    });
    cleanup.push(() => conn.close());
    expect(await conn.invoke('account.create', { name: 'ada' })).toEqual({ id: 1, name: 'ada' });
    expect(toto.seen[0]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    // @asynchronous: the bare [id] ack completes the call (toto's client crashed on it: message[2])
    expect(await conn.invoke('queue.push', { job: 7 })).toBeUndefined();
    await waitFor(() => pushed !== undefined);
    expect(pushed).toEqual({ job: 7 });
    // {'error': {code, value}} replies reject with the mapped name
    expect(await rejection(conn.invoke('secure.op'))).toMatchObject({
      code: 'NOT_AUTHORIZED',
      appCode: 1004,
      message: 'not authorized',
      remote: true,
    });
    expect(await rejection(conn.invoke('account.nope'))).toMatchObject({
      code: 'SERVER_ERROR',
      appCode: 1000,
    });
    // toto's own behaviour, opt-in: errors as values
    const legacy = createWorkerConnection({
      addresses: device.frontendAddresses[0]!,
      transport: zmqTransport({ protocol: 'toto' }),
      legacyErrorsAsValues: true,
    });
    cleanup.push(() => legacy.close());
    expect(await legacy.invoke('secure.op')).toEqual({
      error: { code: 1004, value: 'not authorized' },
    });
  });

  test('compression module applied to every message both ways (Python zlib ⇄ deflate)', async () => {
    const device = await createQueueDevice({
      frontend: `tcp://127.0.0.1:${await freePort()}`,
      backend: `tcp://127.0.0.1:${await freePort()}`,
    }).start();
    cleanup.push(() => device.close());
    startTotoWorker(device.backendAddresses[0]!, { echo: { it: (p: unknown) => p } }, true);
    const conn = createWorkerConnection({
      addresses: device.frontendAddresses[0]!,
      transport: zmqTransport({ protocol: 'toto' }),
      compression: deflate(),
    });
    cleanup.push(() => conn.close());
    expect(await conn.invoke('echo.it', { s: 'x'.repeat(10) })).toEqual({ s: 'x'.repeat(10) });
  });

  test('a toto client (raw DEALER frames) calls our worker, directly and behind the toto device', async () => {
    const handlers = {
      math: { add: (p: { a: number; b: number }) => p.a + p.b },
      jobs: { start: asynchronous(async () => 'started') },
    };
    const direct = await startZmqWorker({ handlers });
    cleanup.push(() => direct.close());
    const device = await createQueueDevice({
      frontend: `tcp://127.0.0.1:${await freePort()}`,
      backend: `tcp://127.0.0.1:${await freePort()}`,
    }).start();
    cleanup.push(() => device.close());
    const behind = createWorker({
      handlers,
      transport: zmqWorkerTransport({ connect: device.backendAddresses[0]! }),
    });
    await behind.start();
    cleanup.push(() => behind.close());

    for (const address of [direct.address, device.frontendAddresses[0]!]) {
      const dealer = new Dealer({ linger: 0 });
      dealer.connect(address);
      cleanup.push(() => dealer.close());
      const call = async (id: string, body: unknown) => {
        await dealer.send(['', id, JSON.stringify(body)]);
        const [empty, replyId, reply] = await dealer.receive();
        expect(empty!.byteLength).toBe(0);
        expect(replyId!.toString()).toBe(id);
        return reply === undefined ? 'ACK' : JSON.parse(reply.toString());
      };
      expect(
        await call('6f1c0b0e-5d0c-4c57-9d35-7d3f3f0f8a01', {
          method: 'math.add',
          parameters: { a: 2, b: 40 },
        }),
      ).toBe(42);
      expect(
        await call('6f1c0b0e-5d0c-4c57-9d35-7d3f3f0f8a02', { method: 'math.nope', parameters: {} }),
      ).toEqual({ error: { code: 1000, value: "'module' object has no attribute 'nope'" } });
      expect(
        await call('6f1c0b0e-5d0c-4c57-9d35-7d3f3f0f8a03', {
          method: '__proto__.constructor',
          parameters: {},
        }),
      ).toEqual({ error: { code: 1000, value: "'module' object has no attribute '__proto__'" } });
      // @asynchronous: toto's worker answers [id] before running and nothing after
      expect(
        await call('6f1c0b0e-5d0c-4c57-9d35-7d3f3f0f8a04', {
          method: 'jobs.start',
          parameters: {},
        }),
      ).toBe('ACK');
    }
    expect(direct.status().completed).toBeGreaterThanOrEqual(2);
  });
});

test("a toto client's auto_retry re-send (same message id) runs once on our worker", async () => {
  // toto/zmqworkerconnection.py: on timeout with auto_retry the sweep calls queue_message again
  // with the same message id; the first reply pops the callback, later ones are dropped.
  let runs = 0;
  const worker = await startZmqWorker({
    handlers: {
      slow: { op: async () => (runs++, await new Promise(r => setTimeout(r, 500)), 'ok') },
    },
  });
  cleanup.push(() => worker.close());
  const dealer = new Dealer({ linger: 0 });
  dealer.connect(worker.address);
  cleanup.push(() => dealer.close());
  const id = '6f1c0b0e-5d0c-4c57-9d35-7d3f3f0f8b01';
  const body = JSON.stringify({ method: 'slow.op', parameters: {} });
  await dealer.send(['', id, body]);
  await new Promise(r => setTimeout(r, 150));
  await dealer.send(['', id, body]); // the re-send
  const [, replyId, reply] = await dealer.receive();
  expect(replyId!.toString()).toBe(id);
  expect(JSON.parse(reply!.toString())).toBe('ok');
  await new Promise(r => setTimeout(r, 700));
  expect(runs).toBe(1);
  expect(worker.status().deduplicated).toBe(1);
});

describe('toto-compatible HTTP mode', () => {
  test('POST {address} with {method, parameters}; error statuses reject (toto resolved them)', async () => {
    const server = await startTestServer([
      req => ({
        status: 200,
        body: {
          got: (req.json as { method: string }).method,
          params: (req.json as { parameters: unknown }).parameters,
        },
      }),
      { status: 500, body: { error: { code: 1000, value: 'boom' } } },
      { status: 404, body: 'not json' },
    ]);
    cleanup.push(() => server.close());
    const conn = createWorkerConnection({
      addresses: `${server.url}/worker`,
      transport: httpTransport({ protocol: 'toto' }),
      timeoutMs: 2_000,
    });
    cleanup.push(() => conn.close());
    expect(await conn.invoke('account.login', { user: 'x' })).toEqual({
      got: 'account.login',
      params: { user: 'x' },
    });
    expect(server.requests[0]).toMatchObject({ method: 'POST', path: '/worker' });
    expect(server.requests[0]!.headers['content-type']).toBe('application/json');
    expect(server.requests[0]!.headers['x-rpc-timeout-ms']).toMatch(/^\d+$/);
    expect(await rejection(conn.invoke('a.b'))).toMatchObject({
      code: 'SERVER_ERROR',
      appCode: 1000,
      message: 'boom',
    });
    expect(await rejection(conn.invoke('a.b'))).toMatchObject({ code: 'NOT_FOUND' });
  });

  test('our HTTP worker answers toto bodies on its base path', async () => {
    const worker = await startHttpWorker({
      handlers: { math: { add: (p: { a: number; b: number }) => p.a + p.b } },
    });
    cleanup.push(() => worker.close());
    const conn = createWorkerConnection({
      addresses: worker.address,
      transport: httpTransport({ protocol: 'toto' }),
    });
    cleanup.push(() => conn.close());
    expect(await conn.invoke('math.add', { a: 1, b: 1 })).toBe(2);
    // toto's worker reports a missing method as ERROR_SERVER (1000), an AttributeError
    expect(await rejection(conn.invoke('math.sub', {}))).toMatchObject({
      code: 'SERVER_ERROR',
      appCode: 1000,
      message: "'module' object has no attribute 'sub'",
    });
  });
});

/**
 * toto's `HTTPWorkerConnection.invoke`, as its source does it (toto/httpworkerconnection.py):
 * POST to the address with only `Content-Type: <serialization_mime>` and the body
 * `compress(dumps({'method', 'parameters'}))`; the answer is `loads(response.body)` for any status
 * but 599, never decompressed (tornado's client only undoes a gzip `Content-Encoding`, and toto
 * asks for nothing else). Python's `zlib.compress` is our `deflate()`; `json` serialization.
 */
async function totoHttpInvoke(
  address: string,
  method: string,
  parameters: unknown,
  compression: boolean,
): Promise<{ status: number; headers: Record<string, unknown>; value: unknown }> {
  const dumped = Buffer.from(JSON.stringify({ method, parameters }));
  const res = await undiciRequest(address, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: compression ? deflateSync(dumped) : dumped,
  });
  let body = Buffer.from(await res.body.arrayBuffer());
  if (res.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
  // json.loads(response.body): raises on b'' and on compressed bytes
  return { status: res.statusCode, headers: res.headers, value: JSON.parse(body.toString('utf8')) };
}

describe('toto HTTPWorkerConnection against our HTTP worker', () => {
  test('compression=zlib: the request is inflated, the reply is plain (toto never decompresses)', async () => {
    const worker = await startHttpWorker({
      handlers: { echo: { it: (p: unknown) => p } },
      compression: deflate(),
    });
    cleanup.push(() => worker.close());
    const big = { s: 'x'.repeat(4_000) }; // above every compression threshold
    const reply = await totoHttpInvoke(worker.address, 'echo.it', big, true);
    expect(reply.status).toBe(200);
    expect(reply.headers['content-encoding']).toBeUndefined();
    expect(reply.value).toEqual(big);
  });

  test('@asynchronous: the early answer is a readable null, not an empty body', async () => {
    let ran: unknown;
    const worker = await startHttpWorker({
      handlers: { jobs: { start: asynchronous((p: unknown) => void (ran = p)) } },
      compression: deflate(),
    });
    cleanup.push(() => worker.close());
    const reply = await totoHttpInvoke(worker.address, 'jobs.start', { n: 1 }, true);
    expect(reply.value).toBeNull(); // loads(b'null') is None
    await waitFor(() => ran !== undefined);
    expect(ran).toEqual({ n: 1 });
  });

  test('unknown method: code 1000 with the AttributeError text, like toto (tests/test_http_worker.py test_bad_method)', async () => {
    const worker = await startHttpWorker({ handlers: { math: { add: () => 1 } } });
    cleanup.push(() => worker.close());
    const reply = await totoHttpInvoke(worker.address, 'bad_method', { arg1: 1 }, false);
    expect(reply.status).toBe(404);
    expect(reply.value).toEqual({
      error: { code: 1000, value: "'module' object has no attribute 'bad_method'" },
    });
  });
});

/**
 * A toto HTTP worker as toto's own test defines one (tests/test_http_worker.py `TestHandler`, a
 * tornado handler): it reads the raw body itself (here `zlib.decompress` then `json.loads`, the
 * worker side of `compression=zlib`) and writes plain JSON, with no `Content-Encoding`.
 */
async function startTotoHttpWorker(
  reply: (
    req: IncomingMessage,
    body: any,
  ) => { status?: number; body: Buffer; headers?: Record<string, string> },
) {
  const seen: { headers: IncomingMessage['headers']; raw: Buffer }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', c => chunks.push(c as Buffer));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      seen.push({ headers: req.headers, raw });
      const out = reply(req, JSON.parse(inflateSync(raw).toString()));
      res.writeHead(out.status ?? 200, {
        'content-type': 'application/json; charset=UTF-8',
        ...out.headers,
      });
      res.end(out.body);
    });
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  cleanup.push(() => new Promise<void>(resolve => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

describe('our toto-mode HTTP client against a toto HTTP worker', () => {
  test("serializationMime is toto's serialization_mime: the requests' Content-Type", async () => {
    // toto/httpworkerconnection.py: headers = {'Content-Type': self.mime}
    const server = await startTestServer([{ status: 200, body: { ok: 1 } }]);
    cleanup.push(() => server.close());
    const conn = createWorkerConnection({
      addresses: server.url,
      transport: httpTransport({ protocol: 'toto' }),
      serializationMime: 'application/x-toto+json',
      timeoutMs: 5_000,
    });
    cleanup.push(() => conn.close());
    expect(await conn.invoke('m', {})).toEqual({ ok: 1 });
    expect(server.requests[0]!.headers['content-type']).toBe('application/x-toto+json');
    expect(optionsFromEnv({ WORKER_SERIALIZATION_MIME: 'application/json' })).toMatchObject({
      serializationMime: 'application/json',
    });
    expect(() => createWorkerConnection({ serializationMime: 'json' })).toThrow(
      /serializationMime must be a MIME type such as 'application\/json', got "json"/,
    );
    expect(() => optionsFromEnv({ WORKER_SERIALIZATION_MIME: 'a b' })).toThrow(
      /WORKER_SERIALIZATION_MIME must be a MIME type .* got "a b"/,
    );
  });

  test('compression: sends the compressed body with only Content-Type, reads a plain reply', async () => {
    const toto = await startTotoHttpWorker((_req, body) => ({
      body: Buffer.from(JSON.stringify({ parameters: body.parameters })),
    }));
    const conn = createWorkerConnection({
      addresses: toto.url,
      transport: httpTransport({ protocol: 'toto' }),
      compression: deflate(),
      timeoutMs: 5_000,
    });
    cleanup.push(() => conn.close());
    const parameters = { arg1: 1, arg2: 'hello'.repeat(500) };
    expect(await conn.invoke('return_value', parameters)).toEqual({ parameters });
    expect(toto.seen[0]!.headers['content-encoding']).toBeUndefined();
    expect(JSON.parse(inflateSync(toto.seen[0]!.raw).toString())).toEqual({
      method: 'return_value',
      parameters,
    });
  });

  test('a reply with Content-Encoding: gzip is decoded (tornado does); the compressor is not applied to it', async () => {
    const toto = await startTotoHttpWorker(() => ({
      body: gzipSync(Buffer.from(JSON.stringify({ ok: true }))),
      headers: { 'content-encoding': 'gzip' },
    }));
    const conn = createWorkerConnection({
      addresses: toto.url,
      transport: httpTransport({ protocol: 'toto' }),
      compression: deflate(),
      timeoutMs: 5_000,
    });
    cleanup.push(() => conn.close());
    expect(await conn.invoke('anything', {})).toEqual({ ok: true });
  });

  test('our client and our worker still talk toto over HTTP with compression', async () => {
    const worker = await startHttpWorker({
      handlers: { echo: { it: (p: unknown) => p }, jobs: { go: asynchronous(() => 'later') } },
      compression: deflate(),
    });
    cleanup.push(() => worker.close());
    const conn = createWorkerConnection({
      addresses: worker.address,
      transport: httpTransport({ protocol: 'toto' }),
      compression: deflate(),
      timeoutMs: 5_000,
    });
    cleanup.push(() => conn.close());
    expect(await conn.invoke('echo.it', { s: 'y'.repeat(3_000) })).toEqual({
      s: 'y'.repeat(3_000),
    });
    expect(await conn.invoke('jobs.go', {})).toBeUndefined();
  });
});
