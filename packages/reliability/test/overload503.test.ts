// Faults: a backend answering 503 to everything. The retry budget keeps total attempts (counted by
// the backend) within 1.2x the calls; circuits (and rest-client's per-host ejection) open, then
// close again within one reset period once the backend recovers.
import { setTimeout as sleep } from 'node:timers/promises';
import { faultTolerant, roundRobin, type PolicyEvent } from '@x/resilience';
import { Resources, balancers, type RestClientEvent } from '@x/rest-client';
import { startTestServer, waitFor, type TestServer } from '@x/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordFigure } from '../src/figures.js';
import { sized } from '../src/profile.js';
import { loopUntil, runConcurrently } from '../src/runConcurrently.js';

const CALLS = sized({ quick: 3_000, long: 20_000 });
const CONCURRENCY = 20;
/** The circuit reset period (rest-client: the ejection time). */
const RESET_MS = sized({ quick: 500, long: 1_000 });
/** Slack for the probe to be sent and answered after the period ends. */
const MARGIN_MS = 100;
const SECTION = 'faults: backend answering 503';

/** A loopback backend answering 503 until `healthy` is set; it counts every attempt. */
class SwitchableBackend {
  healthy = false;
  server!: TestServer;
  async start(): Promise<this> {
    this.server = await startTestServer(() =>
      this.healthy ? { body: { ok: true } } : { status: 503, body: 'overloaded' },
    );
    return this;
  }
  get url(): string {
    return this.server.url;
  }
  get netloc(): string {
    return `${this.server.host}:${this.server.port}`;
  }
  get attempts(): number {
    return this.server.requestCount;
  }
}

const failing = new SwitchableBackend();
const healthy = new SwitchableBackend();
const closers: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  await Promise.all([failing.start(), healthy.start()]);
  healthy.healthy = true;
  closers.push(
    () => failing.server.close(),
    () => healthy.server.close(),
  );
});
afterAll(async () => {
  for (const close of closers.reverse()) await close().catch(() => {});
});

/** Makes CALLS calls through `call` against the failing backend: attempts per call, and seconds. */
async function attemptsPerCall(
  name: string,
  call: () => Promise<unknown>,
  target = '<= 1.2',
): Promise<{ ratio: number; seconds: number }> {
  failing.healthy = false;
  failing.server.resetStats();
  const started = performance.now();
  await runConcurrently(CALLS, CONCURRENCY, () => call());
  const seconds = (performance.now() - started) / 1000;
  const ratio = failing.attempts / CALLS;
  recordFigure({
    section: SECTION,
    name: `${name}: attempts per call (${CALLS} calls)`,
    value: ratio.toFixed(3),
    target,
  });
  expect(failing.attempts).toBeGreaterThanOrEqual(CALLS); // every call reached the backend
  return { ratio, seconds };
}

/**
 * Drives `call` steadily while `failing` answers 503 until its circuit (or ejection) has opened and
 * one more period has passed, then lets the backend recover and measures how long the circuit
 * takes to close. `closedAt()` is the time of the last close (0 while open).
 */
async function recoveryTime(
  name: string,
  call: () => Promise<unknown>,
  openedAt: () => number,
  closedAt: () => number,
): Promise<{ closeMs: number; calls: number }> {
  failing.healthy = false;
  failing.server.resetStats();
  healthy.server.resetStats();
  let calls = 0;
  let stop = false;
  const traffic = loopUntil(
    () => stop,
    4,
    async () => {
      calls++;
      await call().catch(() => {});
      await sleep(5);
    },
  );
  try {
    await waitFor(() => openedAt() > 0, { timeoutMs: 5_000, message: `${name} opened` });
    await sleep(RESET_MS * 1.5); // a probe fails and it opens again
    failing.healthy = true;
    const recovered = performance.now();
    await waitFor(() => closedAt() > recovered, {
      timeoutMs: RESET_MS * 10,
      message: `${name} closed after the backend recovered`,
    });
    const closeMs = closedAt() - recovered;
    recordFigure({
      section: SECTION,
      name: `${name}: recovery to closed (ms)`,
      value: closeMs.toFixed(0),
      target: `<= ${RESET_MS} + ${MARGIN_MS}`,
    });
    return { closeMs, calls };
  } finally {
    stop = true;
    await traffic;
  }
}

/** Open/closed times of one key from `stateChange` events. */
function circuitOf(key: () => string) {
  const times = { opened: 0, closed: 0 };
  return {
    times,
    listener: (event: PolicyEvent) => {
      if (event.type !== 'stateChange' || event.key !== key()) return;
      if (event.to === 'open') times.opened = performance.now();
      if (event.to === 'closed') times.closed = performance.now();
    },
  };
}

describe('a backend answering 503 to everything', () => {
  it('faultTolerant: the retry budget keeps attempts within 1.2x the calls', async () => {
    // The breaker is taken out so that every call reaches the backend: the budget alone decides.
    const get = faultTolerant(async call => (await call.http.get('/items/1')).text(), {
      dependencyId: 'items',
      loadBalancer: [failing.url],
      circuitBreaker: { isFailure: () => false },
    });
    closers.push(() => get.close());
    const { ratio } = await attemptsPerCall('resilience (default budget 10% + 10/s)', () => get());
    expect(get.stats().rejections.budget).toBeGreaterThan(0);
    expect(ratio).toBeLessThanOrEqual(1.2);
  });

  it('rest-client: the retry budget keeps attempts within 1.2x the calls', async () => {
    const resources = new Resources([failing.url]);
    closers.push(() => resources.close());
    const { ratio } = await attemptsPerCall('rest-client (default budget 10% + 10/s)', () =>
      resources.get('/items/1'),
    );
    expect(ratio).toBeLessThanOrEqual(1.2);
  });

  it('faultTolerant: the circuit opens, and closes within one reset period after recovery', async () => {
    const circuit = circuitOf(() => failing.netloc);
    const get = faultTolerant(async call => (await call.http.get('/items/1')).text(), {
      dependencyId: 'items',
      loadBalancer: [failing.url],
      circuitResetTimeout: RESET_MS,
    });
    closers.push(() => get.close());
    get.onEvent(circuit.listener);
    const { closeMs, calls } = await recoveryTime(
      'resilience circuit',
      () => get(),
      () => circuit.times.opened,
      () => circuit.times.closed,
    );
    expect(get.stats().rejections.circuit).toBeGreaterThan(0);
    expect(failing.attempts).toBeLessThanOrEqual(1.2 * calls);
    expect(closeMs).toBeLessThanOrEqual(RESET_MS + MARGIN_MS);
  });

  it('faultTolerant: per-host circuits: only the failing host opens, and it closes within one reset period', async () => {
    const failingCircuit = circuitOf(() => failing.netloc);
    const healthyCircuit = circuitOf(() => healthy.netloc);
    const get = faultTolerant(async call => (await call.http.get('/items/1')).text(), {
      dependencyId: 'items',
      // Round robin keeps sending the failing host its share (the default balancer would route
      // around it after a few failures, so its circuit would never need to open).
      loadBalancer: { endpoints: [failing.url, healthy.url], balancer: roundRobin() },
      circuitResetTimeout: RESET_MS,
    });
    closers.push(() => get.close());
    get.onEvent(failingCircuit.listener);
    get.onEvent(healthyCircuit.listener);
    const { closeMs, calls } = await recoveryTime(
      'resilience per-host circuit',
      () => get(),
      () => failingCircuit.times.opened,
      () => failingCircuit.times.closed,
    );
    expect(healthyCircuit.times.opened).toBe(0);
    expect(failing.attempts + healthy.attempts).toBeLessThanOrEqual(1.2 * calls);
    expect(closeMs).toBeLessThanOrEqual(RESET_MS + MARGIN_MS);
  });

  it('rest-client: per-host ejection: the failing host is ejected, and readmitted within one ejection period', async () => {
    const times = { opened: 0, closed: 0 };
    const resources = new Resources([failing.url, healthy.url], {
      balancer: balancers.roundRobin(), // as above: the failing host keeps getting its share
      retry: { budget: { percentCanRetry: 0.1 } },
      health: { consecutiveFailures: 5, baseEjectionMs: RESET_MS, maxEjectionMs: RESET_MS },
    });
    closers.push(() => resources.close());
    resources.onEvent((event: RestClientEvent) => {
      if (event.host !== failing.server.origin) return;
      if (event.type === 'eject') times.opened = performance.now();
      if (event.type === 'readmit') times.closed = performance.now();
    });
    const { closeMs, calls } = await recoveryTime(
      'rest-client per-host ejection',
      () => resources.get('/items/1'),
      () => times.opened,
      () => times.closed,
    );
    expect(failing.attempts + healthy.attempts).toBeLessThanOrEqual(1.2 * calls);
    expect(closeMs).toBeLessThanOrEqual(RESET_MS + MARGIN_MS);
  });
});
