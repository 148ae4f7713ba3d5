import { DEADLINE_HEADER, isXError } from '@x/resilience';
import { waitFor } from '@x/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { bullmqEntrypoint } from './bullmqEntrypoint.js';
import { HttpEntrypoint, type HttpEntrypointOptions } from './httpEntrypoint.js';
import { route, type Route } from './route.js';
import { syncBackoff } from './backoffPolicy.js';
import { httpRequest } from './test/helpers.js';
import { describeRedis, REDIS_URL, uniqueName } from './test/redis.js';
import type { WorkerContext } from './workerContext.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});
function track<T extends Route<any, any, any, any>>(r: T): T {
  cleanups.push(() => r.stop({ timeoutMs: 2_000 }));
  return r;
}

interface Seen {
  deadline: number;
  remainingMs: number;
}

/** A route whose target records what it sees of the deadline, then waits `waitMs` or its signal. */
async function serve(options: HttpEntrypointOptions = {}, routeTimeoutMs?: number) {
  const seen: Seen[] = [];
  const http = new HttpEntrypoint<Buffer>({ port: 0, path: '/work', ...options });
  const r = track(
    route({
      entrypoint: http,
      ...(routeTimeoutMs === undefined ? {} : { timeoutMs: routeTimeoutMs }),
      target: async (body: Buffer, ctx: WorkerContext) => {
        seen.push({ deadline: ctx.deadline, remainingMs: ctx.remainingMs });
        const waitMs = Number(body.toString() || 0);
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(resolve, waitMs);
          ctx.signal.addEventListener('abort', () => {
            clearTimeout(timer);
            reject(ctx.signal.reason as Error);
          });
        });
        return { remainingMs: ctx.remainingMs };
      },
    }),
  );
  await r.start();
  return { url: `${http.url}/work`, seen, route: r };
}

describe('httpEntrypoint: x-request-timeout-ms becomes the route deadline', () => {
  it('the target sees the budget (shrunk) and is stopped by it: 504 DEADLINE_EXCEEDED, not the route timeout', async () => {
    const { url, seen } = await serve({}, 10_000);
    const started = Date.now();
    const res = await httpRequest(url, { body: '5000', headers: { [DEADLINE_HEADER]: '300' } });
    const elapsed = Date.now() - started;
    expect(res.status).toBe(504);
    expect(res.json().error.code).toBe('DEADLINE_EXCEEDED');
    expect(elapsed).toBeLessThan(300 + 1_500);
    expect(seen[0]!.remainingMs).toBeLessThanOrEqual(300);
    expect(seen[0]!.remainingMs).toBeGreaterThan(0);
    expect(Number.isFinite(seen[0]!.deadline)).toBe(true);
  });

  it('caps the budget at maxDeadlineMs, ignores a malformed one, and has none without the header', async () => {
    const { url, seen } = await serve({ maxDeadlineMs: 1_000 });
    expect(
      (await httpRequest(url, { body: '0', headers: { [DEADLINE_HEADER]: '60000' } })).status,
    ).toBe(200);
    expect(
      (await httpRequest(url, { body: '0', headers: { [DEADLINE_HEADER]: 'later' } })).status,
    ).toBe(200);
    expect((await httpRequest(url, { body: '0' })).status).toBe(200);
    expect(seen[0]!.remainingMs).toBeLessThanOrEqual(1_000);
    expect(seen[0]!.remainingMs).toBeGreaterThan(500);
    expect(seen[1]!.remainingMs).toBe(Infinity);
    expect(seen[2]!.remainingMs).toBe(Infinity);
    expect(() => new HttpEntrypoint({ maxDeadlineMs: -1 })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTIONS' }),
    );
  });

  it('the route timeout still wins when it is earlier than the budget', async () => {
    const { url, seen } = await serve({}, 200);
    const res = await httpRequest(url, { body: '5000', headers: { [DEADLINE_HEADER]: '5000' } });
    expect(res.status).toBe(504);
    expect(res.json().error.code).toBe('TIMEOUT');
    expect(seen[0]!.remainingMs).toBeLessThanOrEqual(200);
  });

  it('a deadline that passed is not retried by the backoff', async () => {
    const http = new HttpEntrypoint<Buffer>({ port: 0, path: '/w' });
    let runs = 0;
    const r = track(
      route({
        entrypoint: http,
        backoff: syncBackoff({ maxRetries: 3, delay: 10 }),
        target: async (_: Buffer, ctx: WorkerContext) => {
          runs++;
          await new Promise((_, reject) =>
            ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error)),
          );
        },
      }),
    );
    await r.start();
    const res = await httpRequest(`${http.url}/w`, { headers: { [DEADLINE_HEADER]: '150' } });
    expect(res.status).toBe(504);
    expect(runs).toBe(1);
  });
});

describe('startRoute: a message whose deadline passed is settled, not run', () => {
  it('DEADLINE_EXCEEDED, terminal, reason deadline-exceeded, target never called', async () => {
    let runs = 0;
    const r = track(route({ target: () => void runs++ }));
    await r.start();
    const outcome = await r.startRoute('id', 'm', {}, { deadline: r.clock.now() - 1 });
    expect(outcome).toMatchObject({ kind: 'failure', terminal: true, reason: 'deadline-exceeded' });
    expect(isXError((outcome as { error: unknown }).error, 'DEADLINE_EXCEEDED')).toBe(true);
    expect(runs).toBe(0);
  });
});

describe('callbacks after a deadline', () => {
  it('onFailure still runs (bounded by callbacks.timeoutMs only) with reason deadline-exceeded', async () => {
    const seen: Array<{ reason: string; remainingMs: number }> = [];
    const r = track(
      route({
        target: async (_: unknown, ctx: WorkerContext) => {
          await new Promise((_, reject) =>
            ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error)),
          );
        },
        callbacks: {
          onFailure: (event, ctx) =>
            void seen.push({ reason: event.reason, remainingMs: ctx.remainingMs }),
        },
      }),
    );
    await r.start();
    const outcome = await r.startRoute('id', 'm', {}, { deadline: r.clock.now() + 100 });
    expect(outcome).toMatchObject({ kind: 'failure', reason: 'deadline-exceeded' });
    expect(seen).toEqual([{ reason: 'deadline-exceeded', remainingMs: Infinity }]);
  });
});

describeRedis('bullmqEntrypoint: jobs carry their deadline', () => {
  function entrypoint<M>() {
    const ep = bullmqEntrypoint<M>({
      queue: uniqueName('dl'),
      connection: REDIS_URL!,
      lockDurationMs: 2_000,
      stalledIntervalMs: 1_000,
      requeueDelayMs: 50,
    });
    cleanups.push(() => ep.obliterate());
    return ep;
  }

  it('a job that starts after its deadline is dead-lettered as DEADLINE_EXCEEDED, not run', async () => {
    const ep = entrypoint<string>();
    const handled: Array<{ m: string; remainingMs: number }> = [];
    const r = track(
      route({
        entrypoint: ep,
        target: (m: string, ctx: WorkerContext) =>
          void handled.push({ m, remainingMs: ctx.remainingMs }),
      }),
    );
    // published before the consumer starts: the short one expires while waiting
    await ep.publish('late', { timeoutMs: 50 });
    await ep.publish('in-time', { timeoutMs: 60_000 });
    await ep.publish('no-deadline');
    await new Promise(resolve => setTimeout(resolve, 150));
    await r.start();
    const letters = await waitFor(async () => {
      const list = await ep.deadLetters();
      return list.length === 1 ? list : undefined;
    });
    expect(letters[0]).toMatchObject({ message: 'late', reason: 'deadline-exceeded' });
    expect(letters[0]!.error.code).toBe('DEADLINE_EXCEEDED');
    await waitFor(() => (handled.length === 2 ? true : undefined));
    expect(handled.map(h => h.m).sort()).toEqual(['in-time', 'no-deadline']);
    const inTime = handled.find(h => h.m === 'in-time')!;
    expect(inTime.remainingMs).toBeGreaterThan(50_000);
    expect(inTime.remainingMs).toBeLessThanOrEqual(60_000);
    expect(handled.find(h => h.m === 'no-deadline')!.remainingMs).toBe(Infinity);
    await expect(ep.publish('x', { timeoutMs: 1, deadline: Date.now() })).rejects.toMatchObject({
      code: 'INVALID_OPTIONS',
    });
  });
});
