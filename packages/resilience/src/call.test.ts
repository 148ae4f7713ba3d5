import { afterEach, describe, expect, it } from 'vitest';
import { startTestServer, waitFor, type TestServer } from '@x/testkit';
import {
  faultTolerant,
  type FaultTolerantFunction,
  type FaultTolerantOptions,
} from './faultTolerant.js';
import type { Call } from './call.js';
import { Http } from './http.js';
import { ManualClock } from './manualClock.js';
import { constantBackoff } from './backoff.js';
import { roundRobin } from './balancers/roundRobin.js';
import type { Endpoint } from './endpoint.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function server(options?: Parameters<typeof startTestServer>[0]): Promise<TestServer> {
  const s = await startTestServer(options);
  cleanups.push(() => s.close());
  return s;
}

function ft<A extends unknown[], R>(
  fn: (call: Call, ...args: A) => R | PromiseLike<R>,
  options?: FaultTolerantOptions<A, R>,
): FaultTolerantFunction<A, R> {
  const wrapped = faultTolerant(fn, options);
  cleanups.push(() => wrapped.close());
  return wrapped;
}

describe('Call', () => {
  it('describes the attempt: attempt number, deadline, remaining time, endpoint, dependency', async () => {
    const clock = new ManualClock(100);
    const seen: Array<{
      attempt: number;
      deadline: number;
      remainingMs: number;
      endpoint?: string;
      dependencyId: string;
    }> = [];
    const fn = ft(
      call => {
        seen.push({
          attempt: call.attempt,
          deadline: call.deadline,
          remainingMs: call.remainingMs,
          endpoint: call.endpoint?.origin,
          dependencyId: call.dependencyId,
        });
        if (call.attempt === 0) throw new Error('again');
        return 'ok';
      },
      {
        clock,
        timeout: 1000,
        dependencyId: 'orders',
        retryBackoff: constantBackoff(0),
        loadBalancer: { endpoints: ['http://a:1', 'http://b:2'], balancer: roundRobin<Endpoint>() },
      },
    );
    await fn();
    expect(seen).toEqual([
      {
        attempt: 0,
        deadline: 1100,
        remainingMs: 1000,
        endpoint: 'http://a:1',
        dependencyId: 'orders',
      },
      {
        attempt: 1,
        deadline: 1100,
        remainingMs: 1000,
        endpoint: 'http://b:2',
        dependencyId: 'orders',
      },
    ]);
  });

  it('has an Infinity deadline without a timeout, and the shared agent and logger', async () => {
    let call: Call | undefined;
    const fn = ft(c => void (call = c), { timeout: Infinity });
    await fn();
    expect(call!.deadline).toBe(Infinity);
    expect(call!.remainingMs).toBe(Infinity);
    expect(call!.agent).toBe(fn.agent);
    expect(typeof call!.log.warn).toBe('function');
  });

  it('creates its Http client once, bound to the attempt endpoint', async () => {
    const s = await server();
    const fn = ft(
      async call => {
        const http = call.http;
        expect(http).toBeInstanceOf(Http);
        expect(call.http).toBe(http);
        expect(http.agent).toBe(call.agent);
        return (await http.get('/via-endpoint')).json();
      },
      { loadBalancer: [s.url] },
    );
    await expect(fn()).resolves.toEqual({ ok: true, path: '/via-endpoint' });
  });

  it('each attempt gets a fresh Call whose relative URLs follow that attempt endpoint', async () => {
    const a = await server({ status: 503 });
    const b = await server({ body: { from: 'b' } });
    const calls: Call[] = [];
    const fn = ft(
      async call => {
        calls.push(call);
        return (await call.http.get('/r')).json();
      },
      {
        loadBalancer: { endpoints: [a.url, b.url], balancer: roundRobin<Endpoint>() },
        retryBackoff: constantBackoff(0),
      },
    );
    await expect(fn()).resolves.toEqual({ from: 'b' });
    expect(calls).toHaveLength(2);
    expect(calls[0]).not.toBe(calls[1]);
    expect([a.requests[0]?.path, b.requests[0]?.path]).toEqual(['/r', '/r']);
  });

  it('a relative URL without a load balancer is a TypeError', async () => {
    const fn = ft(async call => (await call.http.get('/nowhere')).text(), { retryAttempts: 0 });
    await expect(fn()).rejects.toBeInstanceOf(TypeError);
  });

  it('its signal ends the requests of an attempt when the call times out', async () => {
    const s = await server({ hang: true });
    let signal: AbortSignal | undefined;
    const fn = ft(
      async call => {
        signal = call.signal;
        return (await call.http.get(s.url)).text();
      },
      { timeout: 150 },
    );
    await expect(fn()).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(signal!.aborted).toBe(true);
    expect(signal!.reason).toMatchObject({ code: 'TIMEOUT', timeoutMs: 150 });
    await waitFor(() => s.inFlight === 0, { message: 'the hanging request was closed' });
  });
});
