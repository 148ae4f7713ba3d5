import { afterEach, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '@x/testkit';
import {
  DEADLINE_HEADER,
  LEGACY_RPC_DEADLINE_HEADER,
  deadlineHeaderValue,
  readDeadlineHeader,
} from './deadlineHeader.js';
import { faultTolerant } from './faultTolerant.js';
import { Http } from './http.js';
import { createAgent } from './agent.js';
import { TimeoutError } from './errors.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function server(options?: Parameters<typeof startTestServer>[0]): Promise<TestServer> {
  const s = await startTestServer(options);
  cleanups.push(() => s.close());
  return s;
}

function budgetSeen(s: TestServer, i = 0): number {
  return Number(s.requests[i]!.headers[DEADLINE_HEADER]);
}

describe('readDeadlineHeader', () => {
  it('reads whole ms from Node headers, records and fetch Headers', () => {
    expect(DEADLINE_HEADER).toBe('x-request-timeout-ms');
    expect(readDeadlineHeader({ 'x-request-timeout-ms': '250' })).toBe(250);
    expect(readDeadlineHeader({ 'X-Request-Timeout-Ms': '250' })).toBe(250);
    expect(readDeadlineHeader(new Headers({ 'x-request-timeout-ms': ' 7 ' }))).toBe(7);
    expect(readDeadlineHeader({ 'x-request-timeout-ms': '0' })).toBe(0);
    expect(readDeadlineHeader({ 'x-request-timeout-ms': ['40', '40'] })).toBe(40);
    expect(readDeadlineHeader({})).toBeUndefined();
    expect(readDeadlineHeader(undefined)).toBeUndefined();
  });

  it('ignores malformed values (treated as absent)', () => {
    for (const bad of ['', '-1', '1.5', 'abc', '1e3', '0x10', '99999999999999999999', '10, 20'])
      expect(readDeadlineHeader({ [DEADLINE_HEADER]: bad }), bad).toBeUndefined();
    expect(readDeadlineHeader({ [DEADLINE_HEADER]: ['10', '20'] })).toBeUndefined();
  });

  it('caps at maxMs and reads fallback names only when the canonical one is absent', () => {
    expect(readDeadlineHeader({ [DEADLINE_HEADER]: '60000' }, { maxMs: 5_000 })).toBe(5_000);
    expect(readDeadlineHeader({ [DEADLINE_HEADER]: '300' }, { maxMs: 5_000 })).toBe(300);
    const legacy = { [LEGACY_RPC_DEADLINE_HEADER]: '90' };
    expect(readDeadlineHeader(legacy)).toBeUndefined();
    expect(readDeadlineHeader(legacy, { fallbackNames: [LEGACY_RPC_DEADLINE_HEADER] })).toBe(90);
    expect(
      readDeadlineHeader(
        { ...legacy, [DEADLINE_HEADER]: '30' },
        { fallbackNames: [LEGACY_RPC_DEADLINE_HEADER] },
      ),
    ).toBe(30);
  });

  it('deadlineHeaderValue rounds down and never goes negative', () => {
    expect(deadlineHeaderValue(299.9)).toBe('299');
    expect(deadlineHeaderValue(-5)).toBe('0');
    expect(deadlineHeaderValue(Number.NaN)).toBe('0');
    expect(() => deadlineHeaderValue(Infinity)).toThrow(RangeError);
  });
});

describe('Call.http forwards the remaining budget', () => {
  it('sends the faultTolerant deadline left, shrunk by the time already spent', async () => {
    const s = await server();
    const fn = faultTolerant(
      async call => {
        await new Promise(r => setTimeout(r, 100));
        return (await call.http.get(`${s.url}/a`)).status;
      },
      { timeout: 1_000, retryAttempts: 0 },
    );
    cleanups.push(() => fn.close());
    expect(await fn()).toBe(200);
    const seen = budgetSeen(s);
    expect(seen).toBeGreaterThan(0);
    expect(seen).toBeLessThanOrEqual(1_000 - 100 + 5); // timer slack
  });

  it('sends the per-request timeout when smaller, and nothing with sendDeadline: false', async () => {
    const s = await server();
    const fn = faultTolerant(
      async call => {
        await call.http.get(`${s.url}/a`, { timeout: 200 });
        await call.http.get(`${s.url}/b`, { sendDeadline: false });
      },
      { timeout: 5_000, retryAttempts: 0 },
    );
    cleanups.push(() => fn.close());
    await fn();
    expect(budgetSeen(s, 0)).toBe(200);
    expect(s.requests[1]!.headers[DEADLINE_HEADER]).toBeUndefined();
  });

  it('sends nothing without any limit, and keeps a smaller budget set by the caller', async () => {
    const s = await server();
    const agent = createAgent();
    cleanups.push(() => agent.close());
    const http = new Http(agent);
    await http.get(`${s.url}/a`);
    expect(s.requests[0]!.headers[DEADLINE_HEADER]).toBeUndefined();
    await http.get(`${s.url}/b`, { timeout: 5_000, headers: { [DEADLINE_HEADER]: '50' } });
    expect(budgetSeen(s, 1)).toBe(50);
  });
});

describe('faultTolerant with an incoming budget', () => {
  it('its deadline is min(own timeout, incoming budget), forwarded and never waited past', async () => {
    const s = await server({ script: { delayMs: 5_000 } });
    const fn = faultTolerant(async call => (await call.http.get(`${s.url}/slow`)).status, {
      timeout: 10_000,
      retryAttempts: 0,
    });
    cleanups.push(() => fn.close());
    const started = Date.now();
    const error = await fn.run({ timeoutMs: 300 }).catch((e: unknown) => e);
    const elapsed = Date.now() - started;
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as TimeoutError).timeoutMs).toBe(300);
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(300 + 1_500); // far below the own 10 s and the backend's 5 s
    await new Promise(r => setTimeout(r, 50));
    expect(budgetSeen(s)).toBeLessThanOrEqual(300);
  });

  it('a larger incoming budget keeps the own timeout', async () => {
    const s = await server();
    const fn = faultTolerant(async call => (await call.http.get(`${s.url}/a`)).status, {
      timeout: 400,
      retryAttempts: 0,
    });
    cleanups.push(() => fn.close());
    expect(await fn.run({ timeoutMs: 60_000 })).toBe(200);
    expect(budgetSeen(s)).toBeLessThanOrEqual(400);
  });

  it('a spent budget fails at once with TIMEOUT, nothing sent; a bad one is refused', async () => {
    const s = await server();
    const fn = faultTolerant(async call => (await call.http.get(`${s.url}/a`)).status, {
      retryAttempts: 0,
    });
    cleanups.push(() => fn.close());
    await expect(fn.run({ timeoutMs: 0 })).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(s.requests).toHaveLength(0);
    await expect(fn.run({ timeoutMs: -1 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('bounds hedged calls too', async () => {
    const s = await server({ script: { delayMs: 5_000 } });
    const fn = faultTolerant(async call => (await call.http.get(`${s.url}/slow`)).status, {
      timeout: Infinity,
      retryAttempts: 0,
      hedge: { delay: 50 },
    });
    cleanups.push(() => fn.close());
    const started = Date.now();
    await expect(fn.run({ timeoutMs: 250 })).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(Date.now() - started).toBeLessThan(250 + 1_500);
  });
});
