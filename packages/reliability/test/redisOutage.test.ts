// Faults: the gateway CLI in Redis mode while its Redis is stopped (8 s quick, 45 s long) and
// started again with its data, then while it hangs (SIGSTOP, 5 s quick, 20 s long). Every request
// answers within its deadline (job submits: 503 + Retry-After), /readyz is 503 while Redis is
// unusable and 200 within 5 s of its return, and every job accepted (2xx) before or during the
// outage runs after it. The Redis is this test's own redis-server (never the shared REDIS_URL
// one), stopped with SIGTERM and restarted on its port with its data.
import { startRedisServer, type RedisServer } from '@x/testkit';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordFigure } from '../src/figures.js';
import { startGateway, type RunningGateway } from '../src/gateway.js';
import { sized } from '../src/profile.js';
import { uniqueRedisName } from '../src/redis.js';

const SECTION = 'faults: Redis outage under the gateway';
const OUTAGE_MS = sized({ quick: 8_000, long: 45_000 });
const HANG_MS = sized({ quick: 5_000, long: 20_000 });
/** The gateway's deadline for the Redis write of a job submit (`REDIS_DEADLINE_MS`). */
const REDIS_DEADLINE_MS = 2_000;
/** Slack over that deadline for a loaded 2-core machine. */
const SLACK_MS = 1_500;
/** A request taking longer than this is a hang (counted, and fails the test). */
const CLIENT_TIMEOUT_MS = 30_000;
/** /readyz must be 200 again within this long of Redis accepting connections. */
const READY_AFTER_MS = 5_000;

const agent = new Agent({ connections: 64, headersTimeout: CLIENT_TIMEOUT_MS });
let gateway: RunningGateway | undefined;
let redis: RedisServer | undefined;
afterAll(async () => {
  await gateway?.close();
  await redis?.close();
  await agent.close();
});

interface Answer {
  readonly status: number;
  readonly ms: number;
  readonly retryAfter: string | undefined;
  readonly body: any;
  /** performance.now() when it was sent. */
  readonly at: number;
}

async function call(url: string, body?: unknown): Promise<Answer> {
  const at = performance.now();
  try {
    const res = await request(url, {
      dispatcher: agent,
      method: body === undefined ? 'GET' : 'POST',
      ...(body === undefined
        ? {}
        : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
      signal: AbortSignal.timeout(CLIENT_TIMEOUT_MS),
    });
    const text = await res.body.text();
    const retryAfter = res.headers['retry-after'];
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    return {
      status: res.statusCode,
      ms: performance.now() - at,
      retryAfter: typeof retryAfter === 'string' ? retryAfter : undefined,
      body: parsed,
      at,
    };
  } catch (error) {
    return {
      status: 0,
      ms: performance.now() - at,
      retryAfter: undefined,
      body: String(error),
      at,
    };
  }
}

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

/** What one outage measured. */
interface OutageResult {
  readonly outageMs: number;
  readonly submits: readonly Answer[];
  readonly during: readonly Answer[];
  readonly probes: readonly Answer[];
  readonly downProbes: readonly Answer[];
  readonly readyAgainMs: number;
  readonly notReadyAfterMs: number;
  readonly accepted: ReadonlyArray<{ id: string; phase: string }>;
  readonly pending: readonly string[];
  readonly failed: readonly string[];
}

/**
 * One outage of `ms` (Redis stopped, or SIGSTOPped) under the running gateway, with job submits
 * (plain and scheduled) and /readyz probes throughout; then waits for every accepted job.
 */
async function outage(kind: 'stopped' | 'hung', ms: number): Promise<OutageResult> {
  const base = gateway!.url;
  const server = redis!;
  const accepted: Array<{ id: string; phase: string }> = [];
  const submit = async (phase: string, body: Record<string, unknown>) => {
    const a = await call(`${base}api/report-jobs`, body);
    if (a.status === 202) accepted.push({ id: a.body.id, phase });
    return a;
  };
  // Before the outage: a burst larger than the queue's concurrency (8) of 400 ms jobs, so most
  // wait in Redis when it goes, and scheduled jobs due during and after the outage.
  for (let i = 0; i < 24; i++)
    expect((await submit('before', { kind: 'sales', rows: 3, delayMs: 400 })).status).toBe(202);
  for (const runInMs of [1_000, 2_000, ms + 3_000])
    expect((await submit('before', { kind: 'orders', rows: 2, runInMs })).status).toBe(202);

  const submits: Answer[] = [];
  const probes: Answer[] = [];
  let running = true;
  // a submit every 200 ms, not waiting for the previous answer (a hung Redis holds each for 2 s)
  const submitLoop = (async () => {
    const inFlight: Array<Promise<unknown>> = [];
    for (let i = 0; running; i++) {
      const body =
        i % 2 === 0 ? { kind: 'inventory', rows: 1 } : { kind: 'inventory', runInMs: 500 };
      inFlight.push(submit('loop', body).then(a => submits.push(a)));
      await sleep(200);
    }
    await Promise.all(inFlight);
  })();
  const probeLoop = (async () => {
    while (running) {
      probes.push(await call(`${base}readyz`));
      await sleep(100);
    }
  })();
  await sleep(300);
  const stoppedAt = performance.now();
  if (kind === 'stopped') await server.stop();
  else server.pause();
  await sleep(ms);
  if (kind === 'stopped') await server.start();
  else server.resume();
  const backAt = performance.now();
  // keep going until /readyz is 200 again (at most READY_AFTER_MS + a margin)
  const probeUntil = backAt + READY_AFTER_MS + 5_000;
  while (performance.now() < probeUntil) {
    const last = probes.at(-1);
    if (last && last.at > backAt && last.status === 200) break;
    await sleep(100);
  }
  running = false;
  await Promise.all([submitLoop, probeLoop]);

  const firstNotReady = probes.find(p => p.at >= stoppedAt && p.status === 503);
  const firstReadyAgain = probes.find(p => p.at >= backAt && p.status === 200);

  // Nothing accepted is lost: every 202-answered job runs after the outage.
  const doneBy = performance.now() + 60_000;
  let pending = accepted.map(a => a.id);
  const failed: string[] = [];
  while (pending.length > 0 && performance.now() < doneBy) {
    const next: string[] = [];
    for (const id of pending) {
      const state = (await call(`${base}api/report-jobs/${id}`)).body?.state;
      if (state === 'failed') failed.push(id);
      else if (state !== 'done') next.push(id);
    }
    pending = next;
    if (pending.length > 0) await sleep(500);
  }
  return {
    outageMs: backAt - stoppedAt,
    submits,
    // answered entirely while Redis was unusable
    during: submits.filter(a => a.at >= stoppedAt && a.at + a.ms <= backAt),
    probes,
    // /readyz answers once the probe could notice (its PING runs every second, 1 s deadline)
    downProbes: probes.filter(p => p.at >= stoppedAt + 2_500 && p.at + p.ms <= backAt),
    notReadyAfterMs: firstNotReady ? firstNotReady.at + firstNotReady.ms - stoppedAt : NaN,
    readyAgainMs: firstReadyAgain ? firstReadyAgain.at + firstReadyAgain.ms - backAt : NaN,
    accepted,
    pending,
    failed,
  };
}

/** Records the figures of an outage and asserts them. */
function check(kind: 'stopped' | 'hung', r: OutageResult): void {
  const section = `${SECTION} (${kind === 'stopped' ? 'stopped and restarted' : 'hung: SIGSTOP'})`;
  const hung = [...r.submits, ...r.probes].filter(a => a.status === 0);
  const maxSubmitMs = Math.max(...r.submits.map(a => a.ms));
  const maxProbeMs = Math.max(...r.probes.map(a => a.ms));
  const statuses: Record<string, number> = {};
  for (const a of r.during) statuses[a.status] = (statuses[a.status] ?? 0) + 1;
  const refused = r.during.filter(a => a.status === 503);
  const withoutRetryAfter = refused.filter(a => a.retryAfter === undefined);
  const codes = new Set(refused.map(a => a.body?.error?.code));
  const readyWhileDown = r.downProbes.filter(p => p.status === 200).length;
  const redisCheck = r.downProbes.find(p => p.status === 503)?.body?.checks?.redis;
  const before = r.accepted.filter(a => a.phase === 'before').length;

  recordFigure({ section, name: 'Redis unusable (ms)', value: Math.round(r.outageMs) });
  recordFigure({
    section,
    name: 'job submits answered during the outage, by status',
    value: `${r.during.length}: ${JSON.stringify(statuses)}`,
    target: '503 + Retry-After (or 202)',
  });
  recordFigure({
    section,
    name: 'job submits: max answer time, whole run (ms)',
    value: maxSubmitMs.toFixed(0),
    target: `<= ${REDIS_DEADLINE_MS} + ${SLACK_MS}`,
  });
  recordFigure({
    section,
    name: '/readyz: max answer time (ms)',
    value: maxProbeMs.toFixed(0),
    target: `<= ${REDIS_DEADLINE_MS} + ${SLACK_MS}`,
  });
  recordFigure({ section, name: 'requests never answered', value: hung.length, target: '0' });
  recordFigure({
    section,
    name: '/readyz: Redis gone → first 503 (ms)',
    value: r.notReadyAfterMs.toFixed(0),
  });
  recordFigure({
    section,
    name: '/readyz: 200 answers while Redis was gone (from 2.5 s in)',
    value: `${readyWhileDown} of ${r.downProbes.length}`,
    target: '0',
  });
  recordFigure({
    section,
    name: '/readyz: Redis back → first 200 (ms)',
    value: r.readyAgainMs.toFixed(0),
    target: `<= ${READY_AFTER_MS}`,
  });
  recordFigure({
    section,
    name: 'jobs accepted (202): burst before / submit loop (before, during, after)',
    value: `${before} / ${r.accepted.length - before}`,
  });
  recordFigure({
    section,
    name: 'accepted jobs lost (not done 60 s after) / failed',
    value: `${r.pending.length} / ${r.failed.length}`,
    target: '0 / 0',
  });

  expect(hung).toEqual([]);
  expect(r.during.length).toBeGreaterThan(r.outageMs / 1_000 - 3); // the loop kept going
  expect(r.during.every(a => a.status === 503 || a.status === 202)).toBe(true);
  expect(refused.length).toBeGreaterThan(0);
  expect(withoutRetryAfter).toEqual([]);
  expect([...codes]).toEqual(['QUEUE_UNAVAILABLE']);
  expect(maxSubmitMs).toBeLessThanOrEqual(REDIS_DEADLINE_MS + SLACK_MS);
  expect(maxProbeMs).toBeLessThanOrEqual(REDIS_DEADLINE_MS + SLACK_MS);
  expect(r.downProbes.length).toBeGreaterThan(0);
  expect(readyWhileDown).toBe(0);
  expect(redisCheck?.ok).toBe(false);
  expect(String(redisCheck?.detail)).toContain(redis!.url);
  expect(r.readyAgainMs).toBeLessThanOrEqual(READY_AFTER_MS);
  expect(r.pending).toEqual([]);
  expect(r.failed).toEqual([]);
}

describe('gateway in Redis mode while its Redis is stopped, then hung', () => {
  beforeAll(async () => {
    redis = await startRedisServer();
    gateway = await startGateway({
      config: { redis: { prefix: uniqueRedisName('outage') } },
      env: { REDIS_URL: redis.url },
    });
    const readyDeadline = performance.now() + 30_000;
    while ((await call(`${gateway.url}readyz`)).status !== 200) {
      expect(performance.now() < readyDeadline, '/readyz never became 200 at start').toBe(true);
      await sleep(200);
    }
  });

  it(
    `Redis stopped ${OUTAGE_MS / 1000} s: every request answers within its deadline, /readyz follows Redis, no accepted job is lost`,
    async () => check('stopped', await outage('stopped', OUTAGE_MS)),
    sized({ quick: 120_000, long: 200_000 }),
  );

  it(
    `Redis hung (SIGSTOP) ${HANG_MS / 1000} s: every request answers within its deadline, /readyz follows Redis, no accepted job is lost`,
    async () => check('hung', await outage('hung', HANG_MS)),
    sized({ quick: 120_000, long: 200_000 }),
  );
});
