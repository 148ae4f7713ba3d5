// Faults: a hung (SIGSTOPped) orders v1 instance behind the real gateway CLI. (1) Every request
// through the gateway or straight through the dispatcher's front door settles within the
// dispatcher's deadline + 1 s. (2) Health checks take the hung instance out of rotation, then
// SIGKILL and restart it while it stays hung. (3) The orders circuit is per version: while v1
// hangs, the requests the split sends to v2 keep answering live (no fallback).
import { waitFor } from '@x/testkit';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordFigure } from '../src/figures.js';
import { startGateway, type RunningGateway } from '../src/gateway.js';
import { sized } from '../src/profile.js';

const SECTION = 'faults: hung instance, per-version orders circuit';
/** The dispatcher's request deadline (`dispatcher.requestTimeoutMs`). */
const DEADLINE_MS = 3_000;
const HEALTH = {
  intervalMs: 500,
  timeoutMs: 400,
  unhealthyThreshold: 2,
  healthyThreshold: 1,
  restartThreshold: 8,
};
/** How long the mixed v1 / v2 order traffic runs while v1 hangs. */
const HUNG_PHASE_MS = sized({ quick: 6_000, long: 20_000 });

const agent = new Agent({ connections: 64, headersTimeout: 60_000, bodyTimeout: 60_000 });
let gateway: RunningGateway;
let hungPid: number | undefined;

beforeAll(async () => {
  const restart = { initialDelayMs: 200, maxDelayMs: 2_000, maxRestarts: 10 };
  gateway = await startGateway({
    config: {
      dispatcher: { requestTimeoutMs: DEADLINE_MS },
      modules: {
        orders: {
          versions: {
            v1: { healthCheck: HEALTH, restart },
            v2: { healthCheck: HEALTH, restart },
          },
        },
      },
    },
  });
});

afterAll(async () => {
  if (hungPid !== undefined) {
    try {
      process.kill(hungPid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await gateway?.close();
  await agent.close();
});

interface Answer {
  status: number;
  ms: number;
  body: Record<string, unknown>;
  servedBy: string | undefined;
}

async function get(url: string, headers: Record<string, string> = {}): Promise<Answer> {
  const started = performance.now();
  try {
    const res = await request(url, { dispatcher: agent, headers });
    const text = await res.body.text();
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      body = { text };
    }
    const servedBy = res.headers['x-served-by'];
    return {
      status: res.statusCode,
      ms: performance.now() - started,
      body,
      servedBy: typeof servedBy === 'string' ? servedBy : undefined,
    };
  } catch (error) {
    return {
      status: 0,
      ms: performance.now() - started,
      body: { error: String(error) },
      servedBy: undefined,
    };
  }
}

/** A split cookie (`XSPLIT=<bucket>`) that the orders split sends to `version`. */
async function cookieFor(version: string): Promise<string> {
  for (const bucket of [0, 100, 500, 799, 800, 850, 900, 999]) {
    const cookie = `XSPLIT=${bucket}`;
    const a = await get(`${gateway.frontDoorUrl}/orders/7`, { cookie });
    if (a.body.version === version) return cookie;
  }
  throw new Error(`no split bucket found for orders ${version}`);
}

describe('a SIGSTOPped orders v1 instance behind the gateway', () => {
  it('requests settle by the deadline, the instance is ejected and restarted, v2 keeps answering live', async () => {
    const v1Cookie = await cookieFor('v1');
    const v2Cookie = await cookieFor('v2');
    const before = await gateway.instances('orders', 'v1');
    expect(before).toHaveLength(1);
    expect(before[0]).toMatchObject({ state: 'ready', health: 'healthy' });
    hungPid = before[0]!.pid!;
    const baseline = await get(`${gateway.url}api/orders/7`, { cookie: v2Cookie });
    expect(baseline.body).toMatchObject({ source: 'live', version: 'v2' });

    process.kill(hungPid, 'SIGSTOP');
    const stoppedAt = performance.now();

    // (1) pinned to v1 (split cookie), through the gateway's proxy and straight to the front door
    const pinned = Promise.all(
      [`${gateway.url}orders/7`, `${gateway.frontDoorUrl}/orders/7`].flatMap(url =>
        [0, 1, 2].map(() => get(url, { cookie: v1Cookie })),
      ),
    );

    // (3) mixed order lookups through the gateway's orders route while v1 hangs
    const orders: Array<{ cookie: 'v1' | 'v2'; answer: Answer }> = [];
    const until = stoppedAt + HUNG_PHASE_MS;
    const worker = async (which: 'v1' | 'v2') => {
      const cookie = which === 'v1' ? v1Cookie : v2Cookie;
      while (performance.now() < until) {
        orders.push({ cookie: which, answer: await get(`${gateway.url}api/orders/7`, { cookie }) });
        await new Promise(resolve => setTimeout(resolve, 50));
      }
    };
    // 8 v1-bound lookups time out together: more consecutive failures than circuitOpenAfter (5),
    // which opened the one circuit of the front door's address for v2's share too
    const traffic = Promise.all([
      ...Array.from({ length: 8 }, () => worker('v1')),
      worker('v2'),
      worker('v2'),
    ]);

    // (2) out of rotation, then killed and replaced
    let ejectedMs = NaN;
    let restartedMs = NaN;
    const watch = (async () => {
      await waitFor(
        async () => (await gateway.instances('orders', 'v1'))[0]?.health === 'unhealthy',
        { timeoutMs: 15_000, intervalMs: 50 },
      );
      ejectedMs = performance.now() - stoppedAt;
      await waitFor(
        async () => {
          const now = (await gateway.instances('orders', 'v1'))[0];
          return now?.state === 'ready' && now.pid !== hungPid && now.health === 'healthy';
        },
        { timeoutMs: 30_000, intervalMs: 50 },
      );
      restartedMs = performance.now() - stoppedAt;
    })();

    const pinnedAnswers = await pinned;
    await Promise.all([traffic, watch]);

    const slowestPinned = Math.max(...pinnedAnswers.map(a => a.ms));
    for (const a of pinnedAnswers) {
      expect([200, 504]).toContain(a.status);
      if (a.status === 504) expect(a.body).toMatchObject({ error: { code: 'DEADLINE_EXCEEDED' } });
    }
    expect(slowestPinned).toBeLessThan(DEADLINE_MS + 1_000);
    const slowestOrder = Math.max(...orders.map(o => o.answer.ms));

    let gone = false;
    try {
      process.kill(hungPid, 0);
    } catch {
      gone = true;
    }
    expect(gone).toBe(true);

    const v2 = orders.filter(o => o.cookie === 'v2');
    const v1 = orders.filter(o => o.cookie === 'v1');
    const v2Live = v2.filter(
      o => o.answer.body.source === 'live' && o.answer.body.version === 'v2',
    );
    const fallbacks = orders.filter(o => o.answer.body.source === 'fallback');
    const pct = (n: number, of: number) => `${((100 * n) / Math.max(1, of)).toFixed(1)} %`;

    recordFigure({
      section: SECTION,
      name: `slowest request pinned to the hung v1 (gateway proxy and front door), deadline ${DEADLINE_MS} ms`,
      value: `${Math.round(slowestPinned)} ms`,
      target: `< ${DEADLINE_MS + 1_000} ms`,
    });
    recordFigure({
      section: SECTION,
      name: 'slowest /api/orders answer while v1 hangs (orders timeout 2 000 ms)',
      value: `${Math.round(slowestOrder)} ms`,
    });
    recordFigure({
      section: SECTION,
      name: `hung v1 out of rotation after (checks every ${HEALTH.intervalMs} ms, ${HEALTH.unhealthyThreshold} failures)`,
      value: `${Math.round(ejectedMs)} ms`,
      target: `< ${HEALTH.intervalMs * HEALTH.unhealthyThreshold + HEALTH.timeoutMs + 2_000} ms`,
    });
    recordFigure({
      section: SECTION,
      name: `hung v1 killed and a new process serving after (restartThreshold ${HEALTH.restartThreshold})`,
      value: `${Math.round(restartedMs)} ms`,
    });
    recordFigure({
      section: SECTION,
      name: 'v2-bound /api/orders answered live while v1 hangs',
      value: `${v2Live.length} / ${v2.length}`,
      target: 'all',
    });
    recordFigure({
      section: SECTION,
      name: 'fallback answers while v1 hangs: all / v1-bound / v2-bound',
      value: `${pct(fallbacks.length, orders.length)} / ${pct(v1.filter(o => o.answer.body.source === 'fallback').length, v1.length)} / ${pct(v2.length - v2Live.length, v2.length)}`,
    });

    expect(ejectedMs).toBeLessThan(
      HEALTH.intervalMs * HEALTH.unhealthyThreshold + HEALTH.timeoutMs + 2_000,
    );
    expect(restartedMs).toBeGreaterThan(ejectedMs);
    expect(v1.length).toBeGreaterThan(0);
    expect(v1.every(o => o.answer.status === 200)).toBe(true);
    expect(v2.length).toBeGreaterThan(5);
    expect(v2Live.length).toBe(v2.length);
  });
});
