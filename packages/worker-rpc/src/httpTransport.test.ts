import { startTestServer, waitFor } from '@x/testkit';
import { request } from 'undici';
import { afterEach, describe, expect, test } from 'vitest';
import { asynchronous } from './asynchronous.js';
import { gzip } from './compression.js';
import { WorkerRpcError, isWorkerRpcError } from './errors.js';
import { httpTransport } from './httpTransport.js';
import { delay, startFixture, startHttpWorker } from './test/helpers.js';
import type { HandlerContext } from './worker.js';
import { createWorkerConnection } from './workerConnection.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c().catch(() => {});
});
function later<T extends { close(): Promise<unknown> } | { kill(): Promise<unknown> }>(
  resource: T,
): T {
  cleanup.push(() => ('close' in resource ? resource.close() : resource.kill()));
  return resource;
}
async function rejection(promise: Promise<unknown>): Promise<WorkerRpcError> {
  try {
    await promise;
  } catch (error) {
    if (isWorkerRpcError(error)) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

describe('HTTP transport', () => {
  test('POST {base}/rpc/{method} with id, budget, attempt, codec, key and meta headers', async () => {
    const server = later(
      await startTestServer(() => ({
        status: 200,
        headers: { 'x-rpc-codec': 'json', 'x-rpc-credit': '5' },
        body: { ok: true },
      })),
    );
    const conn = later(
      createWorkerConnection({ addresses: `${server.url}/base/`, timeoutMs: 3_000 }),
    );
    expect(
      await conn.invoke('math.add', { a: 1 }, { idempotencyKey: 'k1', meta: { tenant: 't1' } }),
    ).toEqual({ ok: true });
    const req = server.requests[0]!;
    expect(req).toMatchObject({ method: 'POST', path: '/base/rpc/math.add', json: { a: 1 } });
    expect(req.headers['x-request-id']).toMatch(/^[0-9a-f]{32}$/);
    expect(Number(req.headers['x-rpc-timeout-ms'])).toBeGreaterThan(2_900);
    expect(Number(req.headers['x-rpc-timeout-ms'])).toBeLessThanOrEqual(3_000);
    expect(req.headers).toMatchObject({
      'x-rpc-attempt': '0',
      'x-rpc-codec': 'json',
      'content-type': 'application/json',
      'idempotency-key': 'k1',
      'x-rpc-idempotent': '1',
    });
    expect(
      JSON.parse(Buffer.from(String(req.headers['x-rpc-meta']), 'base64url').toString()),
    ).toEqual({ tenant: 't1' });
    expect(conn.endpoints()[0]!.credit).toBe(5);
  });

  test('error statuses reject with their codes (toto resolved them as values)', async () => {
    const worker = later(
      await startHttpWorker({
        concurrency: 1,
        queue: 0,
        handlers: {
          ok: (p: unknown) => p,
          app: () => {
            throw new WorkerRpcError('OUT_OF_STOCK', 'none left', { details: { sku: 'a' } });
          },
          crash: () => {
            throw new Error('kaput');
          },
          block: () => delay(200),
        },
      }),
    );
    const conn = later(createWorkerConnection({ addresses: worker.address }));
    expect(await rejection(conn.invoke('nope'))).toMatchObject({ code: 'NOT_FOUND', remote: true });
    expect(await rejection(conn.invoke('app'))).toMatchObject({
      code: 'OUT_OF_STOCK',
      message: 'none left',
      details: { sku: 'a' },
    });
    expect(await rejection(conn.invoke('crash'))).toMatchObject({
      code: 'INTERNAL',
      message: 'kaput',
    });
    const other = later(createWorkerConnection({ addresses: worker.address }));
    const [, busy] = await Promise.allSettled([
      conn.invoke('block'),
      delay(30).then(() => other.invoke('block')),
    ]);
    expect((busy as PromiseRejectedResult).reason).toMatchObject({
      code: 'OVERLOADED',
      retryable: true,
    });
    // the raw HTTP view of the same errors
    const res = await request(`${worker.address}/rpc/nope`, {
      method: 'POST',
      body: '{}',
      headers: { 'content-type': 'application/json' },
    });
    expect(res.statusCode).toBe(404);
    expect(await res.body.json()).toEqual({
      error: { code: 'NOT_FOUND', message: expect.any(String), retryable: false },
    });
    const garbage = await request(`${worker.address}/rpc/ok`, {
      method: 'POST',
      body: '{not json',
      headers: { 'content-type': 'application/json' },
    });
    expect(garbage.statusCode).toBe(400);
    expect(((await garbage.body.json()) as { error: { code: string } }).error.code).toBe(
      'INVALID_ARGUMENT',
    );
    const timeout = await request(`${worker.address}/rpc/ok`, {
      method: 'POST',
      body: '{}',
      headers: { 'x-rpc-timeout-ms': 'soon' },
    });
    expect(timeout.statusCode).toBe(400);
    await timeout.body.dump();
    const get = await request(`${worker.address}/rpc/ok`);
    expect(get.statusCode).toBe(415);
    await get.body.dump();
  });

  test('status mapping without a body, retry-after, garbage and truncated responses', async () => {
    const server = later(
      await startTestServer({
        routes: {
          '/rpc/busy': { status: 429, headers: { 'retry-after': '2' }, body: '' },
          '/rpc/gone': { status: 503, body: '<html>down</html>' },
          '/rpc/garbage': { garbage: true },
          '/rpc/truncated': { truncate: true, body: { a: 1 } },
          '/rpc/late': { status: 504, body: '' },
        },
      }),
    );
    const conn = later(createWorkerConnection({ addresses: server.url }));
    expect(await rejection(conn.invoke('busy'))).toMatchObject({
      code: 'OVERLOADED',
      retryAfterMs: 2_000,
      retryable: true,
    });
    expect(await rejection(conn.invoke('gone'))).toMatchObject({
      code: 'UNAVAILABLE',
      retryable: true,
    });
    expect(await rejection(conn.invoke('late'))).toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    expect((await rejection(conn.invoke('garbage'))).code).toBe('UNAVAILABLE');
    expect((await rejection(conn.invoke('truncated'))).code).toBe('UNAVAILABLE');
  });

  test('compression in both directions (toto never decompressed responses)', async () => {
    const counts = { compress: 0, decompress: 0 };
    const g = gzip();
    const counting = {
      name: 'gzip',
      compress: (d: Uint8Array) => (counts.compress++, g.compress(d)),
      decompress: (d: Uint8Array, m: number) => (counts.decompress++, g.decompress(d, m)),
    };
    const worker = later(
      await startHttpWorker({ handlers: { echo: (p: unknown) => p }, compressors: [counting] }),
    );
    const conn = later(
      createWorkerConnection({
        addresses: worker.address,
        compression: { compressor: counting, thresholdBytes: 200 },
      }),
    );
    const big = { text: 'y'.repeat(20_000) };
    expect(await conn.invoke('echo', big)).toEqual(big);
    expect(counts).toEqual({ compress: 2, decompress: 2 });
    const raw = await request(`${worker.address}/rpc/echo`, {
      method: 'POST',
      body: JSON.stringify(big),
      headers: { 'content-type': 'application/json', 'accept-encoding': 'gzip' },
    });
    expect(raw.headers['content-encoding']).toBe('gzip');
    await raw.body.dump();
  });

  test("ack: 'delivery' answers 202 as soon as the worker accepted the call", async () => {
    let finished = false;
    const worker = later(
      await startHttpWorker({
        handlers: {
          report: asynchronous(async () => {
            await delay(300);
            finished = true;
            return 'done';
          }),
        },
      }),
    );
    const conn = later(createWorkerConnection({ addresses: worker.address }));
    const started = Date.now();
    expect(await conn.invoke('report', {}, { ack: 'delivery' })).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(250);
    expect(finished).toBe(false);
    expect(await conn.invoke('report')).toBe('done');
  });

  test('bearer token: missing or wrong is UNAUTHENTICATED, never reaching the handler', async () => {
    let calls = 0;
    const worker = later(
      await startHttpWorker({ handlers: { secret: () => (calls++, 's3cret') } }, { token: 'tok' }),
    );
    const anonymous = later(createWorkerConnection({ addresses: worker.address }));
    const wrong = later(
      createWorkerConnection({
        addresses: worker.address,
        transport: httpTransport({ token: 'nope' }),
      }),
    );
    const right = later(
      createWorkerConnection({
        addresses: worker.address,
        transport: httpTransport({ token: 'tok' }),
      }),
    );
    expect((await rejection(anonymous.invoke('secret'))).code).toBe('UNAUTHENTICATED');
    expect((await rejection(wrong.invoke('secret'))).code).toBe('UNAUTHENTICATED');
    expect(calls).toBe(0);
    expect(await right.invoke('secret')).toBe('s3cret');
  });

  test('cancelling aborts the request and the handler signal; the budget reaches the handler', async () => {
    let aborted: unknown;
    let budget = 0;
    const worker = later(
      await startHttpWorker({
        handlers: {
          wait: (_p: unknown, ctx: HandlerContext) =>
            new Promise((_resolve, reject) => {
              budget = ctx.remainingMs();
              ctx.signal.addEventListener('abort', () => {
                aborted = ctx.signal.reason;
                reject(ctx.signal.reason);
              });
            }),
        },
      }),
    );
    const conn = later(createWorkerConnection({ addresses: worker.address, timeoutMs: 5_000 }));
    const controller = new AbortController();
    const call = conn.invoke('wait', {}, { signal: controller.signal });
    await waitFor(() => budget > 0);
    expect(budget).toBeGreaterThan(4_000);
    expect(budget).toBeLessThanOrEqual(5_000);
    controller.abort();
    expect((await rejection(call)).code).toBe('CANCELLED');
    await waitFor(() => aborted !== undefined);
    expect(isWorkerRpcError(aborted, 'CANCELLED')).toBe(true);
  });

  test('bodies above maxBodyBytes are refused with FRAME_TOO_LARGE on both ends', async () => {
    const worker = later(
      await startHttpWorker({
        handlers: { echo: (p: unknown) => p, big: () => 'z'.repeat(5_000) },
        maxBodyBytes: 1_000,
      }),
    );
    const conn = later(createWorkerConnection({ addresses: worker.address }));
    expect((await rejection(conn.invoke('echo', { s: 'x'.repeat(2_000) }))).code).toBe(
      'FRAME_TOO_LARGE',
    );
    expect(await conn.invoke('echo', { s: 'ok' })).toEqual({ s: 'ok' });
    const small = later(createWorkerConnection({ addresses: worker.address, maxBodyBytes: 1_000 }));
    expect((await rejection(small.invoke('big'))).code).toBe('FRAME_TOO_LARGE');
    expect((await rejection(small.invoke('echo', { s: 'x'.repeat(2_000) }))).code).toBe(
      'FRAME_TOO_LARGE',
    );
  });

  test('a killed HTTP worker fails the call with UNAVAILABLE; an idempotent retry with the same id runs elsewhere once', async () => {
    const child = later(
      await startFixture('worker', [
        '--transport',
        'http',
        '--bind',
        'http://127.0.0.1:0',
        '--name',
        'doomed',
      ]),
    );
    const executions = new Map<string, number>();
    const survivor = later(
      await startHttpWorker({
        handlers: {
          slow: (_p: unknown, ctx: HandlerContext) => {
            executions.set(ctx.requestId, (executions.get(ctx.requestId) ?? 0) + 1);
            return { name: 'survivor', attempt: ctx.attempt };
          },
        },
      }),
    );
    const conn = later(
      createWorkerConnection({
        addresses: [child.address],
        retry: { maxAttempts: 3 },
        methods: { slow: { idempotent: true } },
        balancer: 'round-robin',
      }),
    );
    const plain = later(createWorkerConnection({ addresses: [child.address] }));
    const lost = rejection(plain.invoke('slow', { ms: 10_000 }));
    const saved = conn.invoke('slow', { ms: 10_000 });
    await delay(300);
    conn.addConnection(survivor.address);
    await child.kill('SIGKILL');
    expect(['UNAVAILABLE', 'TIMEOUT']).toContain((await lost).code);
    expect(await saved).toEqual({ name: 'survivor', attempt: 1 });
    expect([...executions.values()]).toEqual([1]);
  });
});
