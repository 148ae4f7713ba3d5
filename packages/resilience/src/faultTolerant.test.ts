import { afterEach, describe, expect, it } from 'vitest';
import {
  captureWarnings,
  startTestServer,
  startTestServers,
  waitFor,
  type TestServer,
} from '@x/testkit';
import type { Dispatcher } from 'undici';
import {
  faultTolerant,
  type FaultTolerantFunction,
  type FaultTolerantOptions,
} from './faultTolerant.js';
import type { Call } from './call.js';
import { ManualClock } from './manualClock.js';
import { InvalidArgumentError } from './errors.js';
import { sleep, systemClock } from './clock.js';
import { constantBackoff } from './backoff.js';
import { roundRobin } from './balancers/roundRobin.js';
import { priority } from './balancers/priority.js';
import { createAgent } from './agent.js';
import type { Endpoint } from './endpoint.js';
import type { Logger } from './logger.js';
import type { Metrics, Tags } from './metrics/metrics.js';
import type { PolicyEvent } from './policy.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** Registers a cleanup: after this test (the test context's onTestFinished in concurrent tests). */
type Defer = (cleanup: () => Promise<void>) => void;
const afterThisTest: Defer = cleanup => void cleanups.push(cleanup);

async function server(
  options?: Parameters<typeof startTestServer>[0],
  defer: Defer = afterThisTest,
): Promise<TestServer> {
  const s = await startTestServer(options);
  defer(() => s.close());
  return s;
}

/** faultTolerant, closed after the test. */
function ft<A extends unknown[], R>(
  fn: (call: Call, ...args: A) => R | PromiseLike<R>,
  options?: FaultTolerantOptions<A, R>,
  defer: Defer = afterThisTest,
): FaultTolerantFunction<A, R> {
  const wrapped = faultTolerant(fn, options);
  defer(() => wrapped.close());
  return wrapped;
}

const netloc = (s: TestServer) => `127.0.0.1:${s.port}`;

function track<T>(promise: Promise<T>) {
  const state: { settled: boolean; value?: T; error?: unknown } = { settled: false };
  promise.then(
    value => Object.assign(state, { settled: true, value }),
    (error: unknown) => Object.assign(state, { settled: true, error }),
  );
  return state;
}

/** A Metrics sink that records every call. */
function recordingMetrics() {
  const records: Array<{
    kind: 'increment' | 'histogram' | 'gauge';
    name: string;
    value: number | undefined;
    tags: Tags | undefined;
  }> = [];
  const metrics: Metrics = {
    increment: (name, value, tags) => records.push({ kind: 'increment', name, value, tags }),
    histogram: (name, value, tags) => records.push({ kind: 'histogram', name, value, tags }),
    gauge: (name, value, tags) => records.push({ kind: 'gauge', name, value, tags }),
  };
  return { metrics, records };
}

/** A pino-like logger that records every line. */
function recordingLogger() {
  const lines: Array<{ level: string; obj: unknown; msg: unknown }> = [];
  const at =
    (level: string) =>
    (obj: object | string, msg?: string): void =>
      void lines.push({ level, obj, msg });
  const logger: Logger = {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
  };
  return { logger, lines };
}

describe('passCall: the Call argument is optional, as in dace', () => {
  it("passCall: false calls a plain function with the caller's arguments only; the Call is its this", async () => {
    // dace docs (fault_tolerant): "The wrapped function can optionally take a dace.call.Call argument"
    const thisArgs: Call[] = [];
    const add = faultTolerant(
      function (this: Call, a: number, b: number) {
        thisArgs.push(this);
        return a + b;
      },
      { passCall: false, retryAttempts: 0 },
    );
    cleanups.push(() => add.close());
    expect(await add(2, 3)).toBe(5);
    const self = thisArgs[0];
    expect(self?.dependencyId).toBeDefined();
    expect(typeof self?.http.request).toBe('function');
    // the default still passes the Call first
    const seen: unknown[] = [];
    const withCall = ft((call: Call, a: number) => (seen.push(call, a), a), { retryAttempts: 0 });
    expect(await withCall(7)).toBe(7);
    expect(seen[1]).toBe(7);
    expect(typeof (seen[0] as Call).http.request).toBe('function');
    expect(() => faultTolerant(() => 1, { passCall: 'no' as unknown as false })).toThrow(
      /passCall must be true or false, got "no"/,
    );
  });
});

describe('faultTolerant over HTTP', () => {
  it('Call.http against a hanging server settles by the deadline and closes the connection', async () => {
    const s = await server({ hang: true });
    const fn = ft(async call => (await call.http.request('GET', s.url + '/x')).text(), {
      timeout: 300,
    });
    const started = performance.now();
    const error = await fn().catch((e: unknown) => e);
    const elapsed = performance.now() - started;
    expect(error).toMatchObject({ code: 'TIMEOUT', scope: 'operation', timeoutMs: 300 });
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(300 + 1_500);
    expect(s.requestCount).toBe(1);
    await waitFor(() => s.inFlight === 0, { message: 'the server saw the connection closed' });
    expect(fn.stats()).toMatchObject({ calls: 1, failures: 1, timeouts: 1, inFlight: 0 });
  });

  it('breakers of two netlocs open independently', async () => {
    const a = await server({ status: 500 });
    const b = await server({ body: { from: 'b' } });
    const fn = ft(async call => (await call.http.get('/')).json(), {
      loadBalancer: { endpoints: [a.url, b.url], balancer: roundRobin<Endpoint>() },
      retryAttempts: 0,
    });
    for (let i = 0; i < 10; i++) await fn().catch(() => {});
    expect(a.requestCount).toBe(5);
    expect(fn.breakers.peek(netloc(a))!.state).toBe('open');
    expect(fn.breakers.peek(netloc(b))!.state).toBe('closed');

    const outcomes: string[] = [];
    for (let i = 0; i < 10; i++) {
      outcomes.push(
        await fn().then(
          r => (r as { from: string }).from,
          (e: { code?: string }) => e.code ?? 'unknown',
        ),
      );
    }
    // each call either went to B or failed fast on A's open circuit (or was steered away from it)
    expect(outcomes.every(o => o === 'b' || o === 'CIRCUIT_OPEN')).toBe(true);
    const onB = outcomes.filter(o => o === 'b').length;
    expect(onB).toBeGreaterThanOrEqual(5);
    expect(a.requestCount).toBe(5); // the open breaker kept calls away from A
    expect(b.requestCount).toBe(5 + onB);
    const stats = fn.stats();
    expect(stats.rejections.circuit).toBe(10 - onB);
    expect(stats.circuits).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ key: netloc(a), state: 'open' }),
        expect.objectContaining({ key: netloc(b), state: 'closed' }),
      ]),
    );
  });

  it('a retry moves to another endpoint', async () => {
    const a = await server({ status: 503 });
    const b = await server({ body: { from: 'b' } });
    const aNetloc = netloc(a);
    const endpoints: Array<string | undefined> = [];
    const fn = ft(
      async call => {
        endpoints[call.attempt] = call.endpoint?.netloc;
        return (await call.http.get('/')).json();
      },
      {
        loadBalancer: {
          endpoints: [a.url, b.url],
          balancer: priority<Endpoint>(e => (e.netloc === aNetloc ? 0 : 1)),
        },
        retryBackoff: constantBackoff(0),
      },
    );
    await expect(fn()).resolves.toEqual({ from: 'b' });
    expect(a.requestCount).toBe(1);
    expect(b.requestCount).toBe(1);
    expect(endpoints).toEqual([aNetloc, netloc(b)]);
  });

  it('never repeats a POST without an idempotency key that reached the server; retries it with a key', async () => {
    // The server executes the request, then resets the connection before answering.
    const s = await server({ reset: true });
    const options = {
      retryAttempts: 3,
      retryBackoff: constantBackoff(0),
      retryBudget: false as const,
    };
    const post = ft(async call => (await call.http.post(s.url, { json: {} })).text(), options);
    await expect(post()).rejects.toMatchObject({ code: 'CONNECTION_ERROR', idempotent: false });
    expect(s.requestCount).toBe(1);
    expect(post.stats().retries).toBe(0);

    s.resetStats();
    const keyed = ft(
      async call => (await call.http.post(s.url, { json: {}, idempotencyKey: 'k1' })).text(),
      options,
    );
    await expect(keyed()).rejects.toMatchObject({ code: 'CONNECTION_ERROR', idempotent: true });
    expect(s.requestCount).toBe(4);
    expect(s.requests.every(r => r.headers['idempotency-key'] === 'k1')).toBe(true);
  });

  it('retryOnTimeout: false does not retry an attempt timeout; true does', async () => {
    const s = await server({ hang: true });
    // attempts long enough that a busy machine still gets each request to the server in time
    const options = { timeout: 10_000, retryAttempts: 3, retryBackoff: constantBackoff(10) };
    const once = ft(
      async call => (await call.http.request('GET', s.url, { timeout: 1_000 })).text(),
      options,
    );
    const error = await once().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'TIMEOUT', scope: 'attempt', timeoutMs: 1_000 });
    expect(s.requestCount).toBe(1);

    s.resetStats();
    const retried = ft(
      async call => (await call.http.request('GET', s.url, { timeout: 1_000 })).text(),
      { ...options, retryOnTimeout: true },
    );
    const error2 = await retried().catch((e: unknown) => e);
    expect(error2).toMatchObject({ code: 'TIMEOUT', scope: 'attempt' });
    expect(s.requestCount).toBe(4);
    expect(retried.stats().retries).toBe(3);
  }, 30_000);

  it('hedges a slow endpoint to another one', async () => {
    const slow = await server({ delayMs: 2000, body: { from: 'slow' } });
    const fast = await server({ body: { from: 'fast' } });
    const slowNetloc = netloc(slow);
    // the function returns the response unread: the winner's body must stay readable
    const fn = ft(call => call.http.get('/'), {
      loadBalancer: {
        endpoints: [slow.url, fast.url],
        balancer: priority<Endpoint>(e => (e.netloc === slowNetloc ? 0 : 1)),
      },
      expectedIn: 50,
      hedge: { maxExtraLoad: 1 },
    });
    const started = performance.now();
    const res = await fn();
    await expect(res.json()).resolves.toEqual({ from: 'fast' });
    expect(performance.now() - started).toBeLessThan(1900); // the slow one answers at 2 000 ms
    expect(slow.requestCount).toBe(1);
    expect(fast.requestCount).toBe(1);
    expect(fn.stats().hedges).toBe(1);
    await waitFor(() => slow.inFlight === 0, { message: 'the losing request was cancelled' });
  });

  it('relative URLs go to the load-balanced endpoint', async () => {
    const s = await server();
    const fn = ft(
      async (call, id: string) => (await call.http.get(`/users/${id}`, { query: { v: 2 } })).json(),
      {
        loadBalancer: () => ['http', netloc(s)],
      },
    );
    await expect(fn('42')).resolves.toEqual({ ok: true, path: '/users/42' });
    expect(s.requests[0]!.url).toBe('/users/42?v=2');
  });

  it('close() closes its own agent but not one passed in', async () => {
    const s = await server();
    const fn = faultTolerant(async call => (await call.http.get(s.url)).text(), {
      retryAttempts: 0,
    });
    await fn();
    await fn.close();
    expect((fn.agent as Dispatcher & { closed: boolean }).closed).toBe(true);
    await expect(fn()).rejects.toMatchObject({
      code: 'CONNECTION_ERROR',
      cause: { code: expect.stringMatching(/^UND_ERR_(CLOSED|DESTROYED)$/) },
    });

    const agent = createAgent();
    cleanups.push(() => agent.close());
    const shared = faultTolerant(async call => (await call.http.get(s.url)).text(), { agent });
    expect(shared.agent).toBe(agent);
    await shared.close();
    expect((agent as Dispatcher & { closed: boolean }).closed).toBe(false);
    await expect(shared()).resolves.toContain('"ok":true');
  });
});

// Long real-time waits, run side by side; none of their assertions is an upper time bound under 500 ms.
describe('faultTolerant: durations (issue 12)', () => {
  it('timeout: 1e12 and 3e9 mean no deadline: the call succeeds, no early timeout, no TimeoutOverflowWarning', async () => {
    const s = await server({ script: { delayMs: 60, body: { ok: true } } });
    const warnings = captureWarnings();
    // The default clock's timer queue is shared (an earlier call's timer may already be armed):
    // a private copy of the system clock also proves the timer it arms for the deadline.
    for (const [timeout, clock] of [
      [1e12, undefined],
      [3e9, undefined],
      [1e12, { ...systemClock }],
      [3e9, { ...systemClock }],
    ] as const) {
      const fn = ft(async call => (await call.http.request('GET', s.url + '/x')).json(), {
        timeout,
        clock,
      });
      await expect(fn()).resolves.toEqual({ ok: true });
      expect(fn.stats()).toMatchObject({ calls: 1, failures: 0, timeouts: 0 });
    }
    const attempt = ft(async call =>
      (await call.http.request('GET', s.url + '/x', { timeout: 1e12 })).json(),
    );
    await expect(attempt()).resolves.toEqual({ ok: true });
    expect((await warnings.stop()).map(w => w.name)).not.toContain('TimeoutOverflowWarning');
  });

  it('timeout: "300", NaN and -1 are refused with INVALID_ARGUMENT naming the field', async () => {
    const make = (options: FaultTolerantOptions) => () => ft(() => 1, options);
    expect(make({ timeout: '300' as never })).toThrow(
      expect.objectContaining({
        code: 'INVALID_ARGUMENT',
        field: 'timeout',
        message: expect.stringMatching(/^timeout: expected a number of ms > 0.*received "300"$/),
      }),
    );
    expect(make({ timeout: Number.NaN })).toThrow(/timeout: expected .* received NaN/);
    expect(make({ timeout: -1 })).toThrow(/timeout: expected .* received -1/);
    expect(make({ expectedIn: '20' as never })).toThrow(/expectedIn: expected .* received "20"/);
    expect(make({ circuitResetTimeout: Number.NaN })).toThrow(/circuitResetTimeout: .* NaN/);
    const fn = ft(
      async call => call.http.request('GET', 'http://127.0.0.1:1/', { timeout: '300' as never }),
      {
        retryAttempts: 0,
      },
    );
    await expect(fn()).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'timeout' });
  });
});

describe.concurrent('faultTolerant over HTTP (long waits)', () => {
  it('the deadline also ends a response body that stalls', async ({ expect, onTestFinished }) => {
    const s = await server({ slowBodyMs: 5000, body: 'late' }, onTestFinished);
    const fn = ft(
      async call => (await call.http.get(s.url)).text(),
      { timeout: 200 },
      onTestFinished,
    );
    await expect(fn()).rejects.toMatchObject({ code: 'TIMEOUT' });
    await waitFor(() => s.inFlight === 0, {
      timeoutMs: 1000,
      message: 'the body download was aborted at the deadline',
    });
  });

  it('honours Retry-After: 1 on a 503 before retrying', async ({ expect, onTestFinished }) => {
    const s = await server(
      [
        { status: 503, headers: { 'retry-after': '1' } },
        { status: 200, body: { ok: true } },
      ],
      onTestFinished,
    );
    const fn = ft(
      async call => (await call.http.get(s.url + '/r')).json(),
      { retryBackoff: constantBackoff(1) },
      onTestFinished,
    );
    await expect(fn()).resolves.toEqual({ ok: true });
    expect(s.requestCount).toBe(2);
    const gap = s.requests[1]!.receivedAt - s.requests[0]!.receivedAt;
    expect(gap).toBeGreaterThanOrEqual(990);
    expect(gap).toBeLessThan(1000 + 1_500);
    expect(fn.stats().retries).toBe(1);
  });

  it('100 concurrent calls over 2 servers never exceed maxOpenPerNetloc in flight per server', async ({
    expect,
    onTestFinished,
  }) => {
    const servers = await startTestServers(2, { delayMs: 50, body: { ok: true } });
    for (const s of servers) onTestFinished(() => s.close());
    const [a, b] = servers as [TestServer, TestServer];
    const fn = ft(
      async call => (await call.http.get('/work')).json(),
      {
        maxOpenPerNetloc: 10,
        httpPoolSize: 50, // the limit under test, not the connection pool, must hold the line
        loadBalancer: [a.url, b.url],
      },
      onTestFinished,
    );
    const results = await Promise.all(Array.from({ length: 100 }, () => fn()));
    expect(results).toHaveLength(100);
    expect(results.every(r => (r as { ok?: boolean }).ok === true)).toBe(true);
    expect(a.requestCount + b.requestCount).toBe(100);
    for (const s of [a, b]) {
      expect(s.requestCount).toBeGreaterThan(0);
      expect(s.maxInFlight).toBeLessThanOrEqual(10);
      expect(s.maxInFlight).toBeGreaterThanOrEqual(5); // the calls did run concurrently
    }
    expect(fn.stats()).toMatchObject({ calls: 100, successes: 100, failures: 0, inFlight: 0 });
    expect(fn.stats().limits.every(l => l.running === 0 && l.queued === 0)).toBe(true);
  });

  it('keeps total attempts within the retry budget against a backend answering 503', async ({
    expect,
    onTestFinished,
  }) => {
    const s = await server({ status: 503 }, onTestFinished);
    const fn = ft(
      async call => (await call.http.get(s.url)).text(),
      {
        retryAttempts: 3,
        retryBackoff: constantBackoff(0),
        circuitBreaker: { isFailure: () => false }, // keep the breakers out of the way
      },
      onTestFinished,
    );
    const codes = new Map<string, number>();
    const lastCodes: string[] = [];
    let next = 0;
    const worker = async () => {
      while (next < 1000) {
        const i = next++;
        const code = await fn().then(
          () => 'OK',
          (e: { code?: string }) => e.code ?? 'unknown',
        );
        codes.set(code, (codes.get(code) ?? 0) + 1);
        if (i >= 990) lastCodes.push(code);
      }
    };
    const started = performance.now();
    await Promise.all(Array.from({ length: 5 }, worker));
    const seconds = (performance.now() - started) / 1000;
    expect(s.requestCount).toBeGreaterThan(1000); // some retries did happen
    // the budget's rule: 10 % of the calls plus a reserve of 10 retries per second, both counted
    // over its 10 s window (1.2x the calls on a quick run). Withdrawals expire with the window too,
    // so a busy machine's slow run earns up to that much again per further window (sliced by 1 s).
    const windows = Math.max(1, Math.ceil(seconds / 9));
    expect(s.requestCount).toBeLessThanOrEqual(1000 + (0.1 * 1000 + 10 * 10) * windows);
    expect(codes.get('OK')).toBeUndefined();
    expect(codes.get('RETRY_BUDGET_EXHAUSTED')).toBeGreaterThan(700);
    expect(lastCodes.every(c => c === 'RETRY_BUDGET_EXHAUSTED')).toBe(true);
    const stats = fn.stats();
    expect(stats.retries).toBe(s.requestCount - 1000);
    expect(stats.rejections.budget).toBe(codes.get('RETRY_BUDGET_EXHAUSTED'));
    expect(stats.retryBudget).toBe(0);
  }, 90_000); // 1 000 calls: seconds on an idle machine, a minute on a loaded one
});

describe('faultTolerant', () => {
  it('falls back with the final error and the original arguments', async () => {
    const seen: unknown[][] = [];
    let tries = 0;
    const fn = ft<[number, string], string>(
      () => {
        tries++;
        throw new Error('boom');
      },
      {
        retryAttempts: 1,
        retryBackoff: constantBackoff(0),
        fallback: (err, ...args) => {
          seen.push([err, ...args]);
          return `fallback for ${args[0]} ${args[1]}`;
        },
      },
    );
    await expect(fn(7, 'x')).resolves.toBe('fallback for 7 x');
    expect(tries).toBe(2);
    expect(seen).toHaveLength(1);
    expect(seen[0]![0]).toBeInstanceOf(Error);
    expect((seen[0]![0] as Error).message).toBe('boom');
    expect(seen[0]!.slice(1)).toEqual([7, 'x']);
    expect(fn.stats()).toMatchObject({ calls: 1, failures: 1, fallbacks: 1, retries: 1 });
  });

  it('passes the arguments and a Call to the function', async () => {
    const clock = new ManualClock();
    const fn = ft(
      (call, a: number, b: number) => ({
        sum: a + b,
        attempt: call.attempt,
        dependencyId: call.dependencyId,
        deadline: call.deadline,
        endpoint: call.endpoint,
      }),
      { clock, dependencyId: 'adder', timeout: 1000 },
    );
    await expect(fn(2, 3)).resolves.toEqual({
      sum: 5,
      attempt: 0,
      dependencyId: 'adder',
      deadline: 1000,
      endpoint: undefined,
    });
    expect(fn.dependencyId).toBe('adder');
  });

  it('defaults: timeout 5000 ms', async () => {
    const clock = new ManualClock();
    const fn = ft(() => new Promise<never>(() => {}), { clock });
    const p = track(fn());
    await clock.advance(4999);
    expect(p.settled).toBe(false);
    await clock.advance(1);
    expect(p.error).toMatchObject({ code: 'TIMEOUT', timeoutMs: 5000 });
  });

  it('defaults: 3 retries', async () => {
    const clock = new ManualClock();
    let tries = 0;
    const fn = ft(
      () => {
        tries++;
        throw new Error('always');
      },
      { clock, timeout: Infinity },
    );
    const p = track(fn());
    for (let i = 0; i < 10 && !p.settled; i++) await clock.advance(30_000);
    expect(p.error).toMatchObject({ message: 'always' });
    expect(tries).toBe(4);
    expect(fn.stats().retries).toBe(3);
  });

  it('defaults: 10 concurrent calls per netloc, the rest queued', async () => {
    const clock = new ManualClock();
    let started = 0;
    function dependency(): Promise<never> {
      started++;
      return new Promise<never>(() => {});
    }
    const fn = ft(dependency, { clock, timeout: Infinity });
    expect(fn.dependencyId).toBe('dependency');
    for (let i = 0; i < 12; i++) void fn().catch(() => {});
    await clock.advance(0);
    expect(started).toBe(10);
    expect(fn.limits.peek('dependency')).toMatchObject({ running: 10, queued: 2 });
    expect(fn.stats().inFlight).toBe(12);
  });

  it('run({ signal }) rejects ABORTED promptly when the caller aborts', async () => {
    const clock = new ManualClock();
    const fn = ft((_call, x: number) => new Promise<number>(() => void x), { clock });
    const controller = new AbortController();
    const p = track(fn.run({ signal: controller.signal }, 1));
    await clock.advance(10);
    expect(p.settled).toBe(false);
    controller.abort();
    await clock.advance(0); // no time passes
    expect(p.error).toMatchObject({ code: 'ABORTED' });
    expect(fn.stats()).toMatchObject({ failures: 1, inFlight: 0 });

    const already = new AbortController();
    already.abort();
    await expect(fn.run({ signal: already.signal }, 2)).rejects.toMatchObject({ code: 'ABORTED' });
  });

  it('the Call signal aborts when the caller aborts', async () => {
    const clock = new ManualClock();
    let signal: AbortSignal | undefined;
    const fn = ft(
      call => {
        signal = call.signal;
        return new Promise<never>(() => {});
      },
      { clock },
    );
    const controller = new AbortController();
    const p = fn.run({ signal: controller.signal });
    controller.abort(new Error('bye'));
    await expect(p).rejects.toMatchObject({ code: 'ABORTED' });
    expect(signal!.aborted).toBe(true);
  });

  it('stats() counts calls, successes, failures, retries and latency', async () => {
    const clock = new ManualClock();
    let tries = 0;
    const fn = ft(
      async (_call, ms: number, mode: 'ok' | 'once' | 'always') => {
        await sleep(clock, ms);
        if (mode === 'always' || (mode === 'once' && tries++ === 0)) throw new Error(mode);
        return ms;
      },
      { clock, retryBackoff: constantBackoff(0), timeout: Infinity },
    );
    const plan: Array<[number, 'ok' | 'once' | 'always']> = [
      [100, 'ok'],
      [100, 'ok'],
      [300, 'ok'],
      [50, 'once'], // fails once, then succeeds: 100 ms
      [50, 'always'], // 4 tries: 200 ms, then fails
    ];
    for (const [ms, mode] of plan) {
      const p = fn(ms, mode).catch(() => 'failed');
      expect(fn.stats().inFlight).toBe(1);
      await clock.advance(1000);
      await p;
    }
    const stats = fn.stats();
    expect(stats).toMatchObject({
      calls: 5,
      successes: 4,
      failures: 1,
      retries: 4,
      inFlight: 0,
      fallbacks: 0,
    });
    expect(stats.latencyMs.max).toBe(300);
    expect(stats.latencyMs.p50).toBeCloseTo(100, -1);
    expect(stats.latencyMs.mean).toBeCloseTo((100 + 100 + 300 + 100 + 200) / 5, 5);
    expect(stats.retryBudget).toBe(100 - 4); // the default reserve (10/s over 10 s) minus the retries
  });

  it('expectedIn emits degraded events and counts stats().degraded', async () => {
    const clock = new ManualClock();
    const fn = ft(
      async (_call, ms: number) => {
        await sleep(clock, ms);
        return ms;
      },
      { clock, expectedIn: 100, dependencyId: 'slowish' },
    );
    const events: PolicyEvent[] = [];
    fn.onEvent(e => events.push(e));
    for (const ms of [50, 150, 99, 100]) {
      const p = fn(ms);
      await clock.advance(ms);
      await p;
    }
    const degraded = events.filter(e => e.type === 'degraded');
    expect(degraded).toEqual([
      { type: 'degraded', durationMs: 150, expectedMs: 100, key: 'slowish' },
      { type: 'degraded', durationMs: 100, expectedMs: 100, key: 'slowish' },
    ]);
    expect(fn.stats().degraded).toBe(2);
    expect(events.filter(e => e.type === 'success')).toHaveLength(4);
  });

  it('expectedIn opens the breaker when most calls are slow', async () => {
    const clock = new ManualClock();
    const fn = ft(() => sleep(clock, 200), { clock, expectedIn: 100, dependencyId: 'slow' });
    for (let i = 0; i < 20; i++) {
      const p = fn();
      await clock.advance(200);
      await p;
    }
    expect(fn.breakers.peek('slow')!.state).toBe('open');
    await expect(fn()).rejects.toMatchObject({ code: 'CIRCUIT_OPEN' });
  });

  it('reports to the metrics sink with tags', async () => {
    const clock = new ManualClock();
    const { metrics, records } = recordingMetrics();
    let fail = false;
    const fn = ft(
      () => {
        if (fail) throw new Error('nope');
        return 'ok';
      },
      { clock, metrics, dependencyId: 'users', retryAttempts: 1, retryBackoff: constantBackoff(0) },
    );
    await fn();
    fail = true;
    await fn().catch(() => {});
    const calls = records.filter(r => r.name === 'resilience.calls');
    expect(calls).toEqual([
      {
        kind: 'increment',
        name: 'resilience.calls',
        value: 1,
        tags: { dependency: 'users', outcome: 'success' },
      },
      {
        kind: 'increment',
        name: 'resilience.calls',
        value: 1,
        tags: { dependency: 'users', outcome: 'failure' },
      },
    ]);
    expect(records.filter(r => r.name === 'resilience.call.duration')).toHaveLength(2);
    expect(
      records
        .filter(r => r.name === 'resilience.call.duration')
        .every(r => r.kind === 'histogram' && r.tags?.dependency === 'users'),
    ).toBe(true);
    expect(records).toContainEqual({
      kind: 'increment',
      name: 'resilience.retries',
      value: 1,
      tags: { dependency: 'users' },
    });
  });

  it('reports fallbacks, rejections and circuit state to the metrics sink', async () => {
    const clock = new ManualClock();
    const { metrics, records } = recordingMetrics();
    const fn = ft(() => Promise.reject(new Error('down')), {
      clock,
      metrics,
      dependencyId: 'svc',
      retryAttempts: 0,
      circuitBreaker: {
        strategy: () =>
          new (class {
            state: unknown = 0;
            success() {}
            failure() {
              return true;
            }
          })(),
      },
      fallback: () => 'fb',
    });
    await expect(fn()).resolves.toBe('fb');
    await expect(fn()).resolves.toBe('fb');
    expect(records).toContainEqual({
      kind: 'gauge',
      name: 'resilience.circuit.state',
      value: 1,
      tags: { dependency: 'svc', netloc: 'svc' },
    });
    expect(records).toContainEqual({
      kind: 'increment',
      name: 'resilience.rejections',
      value: 1,
      tags: { dependency: 'svc', reason: 'circuit' },
    });
    expect(records.filter(r => r.name === 'resilience.calls').map(r => r.tags?.outcome)).toEqual([
      'fallback',
      'fallback',
    ]);
    expect(fn.stats()).toMatchObject({
      fallbacks: 2,
      rejections: { circuit: 1, bulkhead: 0, budget: 0 },
    });
  });

  it('logs a warning on failure', async () => {
    const clock = new ManualClock();
    const { logger, lines } = recordingLogger();
    const error = Object.assign(new Error('bad gateway'), { code: 'ECONNRESET' });
    const fn = ft(
      () => {
        throw error;
      },
      { clock, logger, dependencyId: 'billing', retryAttempts: 0 },
    );
    await fn().catch(() => {});
    const warns = lines.filter(l => l.level === 'warn');
    expect(warns).toHaveLength(1);
    expect(warns[0]!.msg).toBe('billing call failed');
    expect(warns[0]!.obj).toMatchObject({
      dependency: 'billing',
      err: error,
      code: 'ECONNRESET',
      durationMs: 0,
    });

    // local rejections (an open circuit) can come by the thousand: logged at debug level only
    fn.breakers.get('billing').isolate();
    await expect(fn()).rejects.toMatchObject({ code: 'CIRCUIT_OPEN' });
    expect(lines.filter(l => l.level === 'warn' && l.msg === 'billing call failed')).toHaveLength(
      1,
    );
    expect(lines.filter(l => l.level === 'debug' && l.msg === 'billing call failed')).toHaveLength(
      1,
    );
  });

  it("onEvent delivers the layers' events and whole-call success/failure", async () => {
    const clock = new ManualClock();
    let n = 0;
    const fn = ft(
      () => {
        if (n++ === 0) throw new Error('first');
        return 'second';
      },
      { clock, retryBackoff: constantBackoff(0) },
    );
    const types: string[] = [];
    const stop = fn.onEvent(e => types.push(e.type));
    await fn();
    expect(types).toEqual(['retry', 'success']);
    stop();
    await fn();
    expect(types).toEqual(['retry', 'success']);
  });

  it('rejects bad options', () => {
    expect(() => faultTolerant('nope' as never)).toThrow(TypeError);
    const make = (options: FaultTolerantOptions) => () => ft(() => 1, options);
    expect(make({ timeout: 0 })).toThrow(InvalidArgumentError);
    expect(make({ timeout: -1 })).toThrow(InvalidArgumentError);
    expect(make({ timeout: Number.NaN })).toThrow(InvalidArgumentError);
    expect(make({ expectedIn: 0 })).toThrow(InvalidArgumentError);
    expect(make({ retryAttempts: -1 })).toThrow(RangeError);
    expect(make({ retryAttempts: 1.5 })).toThrow(RangeError);
    expect(make({ retryBudget: { percentCanRetry: 2 } })).toThrow(RangeError);
    expect(make({ httpPoolSize: 0 })).toThrow(RangeError);
    expect(make({ connectTimeout: 0 })).toThrow(InvalidArgumentError);
    expect(make({ proxy: 'not a url' })).toThrow(TypeError);
    expect(make({ loadBalancer: [] })).toThrow(RangeError);
    expect(make({ loadBalancer: ['http://h:1/path'] })).toThrow(TypeError);
    expect(make({ hedge: { maxHedges: 0 } })).toThrow(RangeError);
    expect(make({ timeout: Infinity })).not.toThrow();
  });
});

describe('faultTolerant open-circuit fast path', () => {
  it('fails fast with the same events, counters and fallback as a full call', async () => {
    const clock = new ManualClock();
    let fail = true;
    const fn = ft(
      (_call: Call, x: number) => {
        if (fail) throw new Error('down');
        return x;
      },
      {
        clock,
        dependencyId: 'fast',
        retryAttempts: 0,
        circuitResetTimeout: 1_000,
        fallback: (error, x: number) =>
          (error as { code?: string }).code === 'CIRCUIT_OPEN' ? -x : Promise.reject(error),
      },
    );
    for (let i = 0; i < 5; i++) await expect(fn(i)).rejects.toThrow('down');
    expect(fn.breakers.peek('fast')!.state).toBe('open');
    const types: string[] = [];
    fn.onEvent(e => types.push(e.type === 'giveUp' ? `giveUp:${e.reason}` : e.type));
    const before = fn.stats();
    const p = fn(7);
    expect(fn.stats().calls).toBe(before.calls + 1); // counted synchronously
    await expect(p).resolves.toBe(-7);
    expect(types).toEqual(['reject', 'giveUp:notRetryable', 'failure', 'fallback']);
    const after = fn.stats();
    expect(after.failures).toBe(before.failures + 1);
    expect(after.fallbacks).toBe(before.fallbacks + 1);
    expect(after.rejections.circuit).toBe(before.rejections.circuit + 1);
    expect(after.inFlight).toBe(0);

    // the reset timeout passes: the next call is the half-open probe, run by the full path
    fail = false;
    await clock.advance(1_000);
    await expect(fn(3)).resolves.toBe(3);
    expect(fn.breakers.peek('fast')!.state).toBe('closed');
  });

  it('rejects an unhandled fast-fail only after the caller attached its handlers', async () => {
    const fn = ft(() => 1, { dependencyId: 'iso' });
    await fn();
    fn.breakers.peek('iso')!.isolate();
    const error = await fn().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'CIRCUIT_OPEN', isolated: true });
    expect(fn.stats()).toMatchObject({ calls: 2, failures: 1, rejections: { circuit: 1 } });
  });

  it('fast-failed calls of one open period share one promise, rejected with the period’s error', async () => {
    const fn = ft(() => 1, { dependencyId: 'own' });
    await fn();
    const release = fn.breakers.peek('own')!.isolate();
    const a = fn();
    const b = fn();
    expect(a).toBe(b); // one handled promise per open period: no promise and microtask per call
    const [ea, eb] = await Promise.all([a.catch((e: unknown) => e), b.catch((e: unknown) => e)]);
    expect(ea).toBe(eb); // one error per open period
    expect(ea).toMatchObject({ code: 'CIRCUIT_OPEN', isolated: true });
    expect(String((ea as Error).message)).toContain('own');
    expect(fn.stats()).toMatchObject({ calls: 3, failures: 2, rejections: { circuit: 2 } });
    // the next open period has its own error and promise
    release();
    await fn();
    fn.breakers.peek('own')!.isolate();
    const c = fn();
    expect(c).not.toBe(a);
    expect(await c.catch((e: unknown) => e)).not.toBe(ea);
  });

  it('an ignored fast failure raises no unhandled rejection', async () => {
    const fn = ft(() => 1, { dependencyId: 'ignored' });
    await fn();
    fn.breakers.peek('ignored')!.isolate();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      void fn();
      void fn();
      await new Promise(resolve => setTimeout(resolve, 20)); // Node reports after the microtasks
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(unhandled).toEqual([]);
    expect(fn.stats()).toMatchObject({ calls: 3, failures: 2, rejections: { circuit: 2 } });
  });

  it('delivers reject events to every listener (breakers, one breaker, policy), one per fast failure', async () => {
    const clock = new ManualClock();
    const fn = ft(() => 1, { clock, dependencyId: 'heard' });
    await fn();
    const breaker = fn.breakers.peek('heard')!;
    breaker.isolate();
    const seen = { breakers: 0, breaker: 0, policy: 0 };
    const count = (where: keyof typeof seen) => (e: { type: string }) => {
      if (e.type === 'reject') seen[where]++;
    };
    await fn().catch(() => {}); // nobody else listens: counted, no event built
    const stops = [fn.breakers.onEvent(count('breakers'))];
    await fn().catch(() => {});
    stops.push(breaker.onEvent(count('breaker')));
    await fn().catch(() => {});
    stops.push(fn.policy.onEvent(count('policy')));
    await fn().catch(() => {});
    expect(seen).toEqual({ breakers: 3, breaker: 2, policy: 1 });
    for (const stop of stops) stop();
    await fn().catch(() => {}); // quiet again
    expect(seen).toEqual({ breakers: 3, breaker: 2, policy: 1 });
    expect(fn.stats()).toMatchObject({ calls: 6, failures: 5, rejections: { circuit: 5 } });
  });
});
