import { DEADLINE_HEADER } from '@x/resilience';
import { startTestServer } from '@x/testkit';
import { request } from 'undici';
import { afterEach, describe, expect, test } from 'vitest';
import { startHttpWorker } from './test/helpers.js';
import type { HandlerContext } from './worker.js';
import { createWorkerConnection } from './workerConnection.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c().catch(() => {});
});
function later<T extends { close(): Promise<unknown> }>(resource: T): T {
  cleanup.push(() => resource.close());
  return resource;
}

describe('HTTP transport: the canonical x-request-timeout-ms next to x-rpc-timeout-ms', () => {
  test('the client sends both headers with the same remaining budget', async () => {
    const server = later(
      await startTestServer(() => ({ status: 200, headers: { 'x-rpc-codec': 'json' }, body: 1 })),
    );
    const conn = later(createWorkerConnection({ addresses: server.url, timeoutMs: 400 }));
    await conn.invoke('m', {});
    const h = server.requests[0]!.headers;
    expect(Number(h[DEADLINE_HEADER])).toBeLessThanOrEqual(400);
    expect(Number(h[DEADLINE_HEADER])).toBeGreaterThan(0);
    expect(h[DEADLINE_HEADER]).toBe(h['x-rpc-timeout-ms']);
  });

  test('the worker reads either header (the smaller wins); a malformed canonical one is ignored', async () => {
    const left: number[] = [];
    const worker = later(
      await startHttpWorker({
        handlers: {
          left: (_: unknown, ctx: HandlerContext) => void left.push(ctx.remainingMs()),
        },
      }),
    );
    const send = async (headers: Record<string, string>) => {
      const res = await request(`${worker.address}/rpc/left`, {
        method: 'POST',
        body: '{}',
        headers: { 'content-type': 'application/json', ...headers },
      });
      await res.body.dump();
      return res.statusCode;
    };
    expect(await send({ [DEADLINE_HEADER]: '300' })).toBe(200);
    expect(await send({ 'x-rpc-timeout-ms': '300' })).toBe(200);
    expect(await send({ [DEADLINE_HEADER]: '200', 'x-rpc-timeout-ms': '5000' })).toBe(200);
    expect(await send({ [DEADLINE_HEADER]: 'soon' })).toBe(200);
    expect(left[0]).toBeLessThanOrEqual(300);
    expect(left[0]).toBeGreaterThan(100);
    expect(left[1]).toBeLessThanOrEqual(300);
    expect(left[2]).toBeLessThanOrEqual(200);
    expect(left[3]).toBeGreaterThan(1_000); // no budget from the client: the worker's own
  });
});
