// Faults: a version whose process cannot start (`node missing.js`) behind the real gateway CLI.
// Its requests get a fast 503 INSTANCE_START_FAILED naming the child's last stderr lines instead
// of a NO_CAPACITY wait of maxPendingLatencyMs (10 s); the dashboard shows the crash loop; the
// other modules keep serving.
import { waitFor } from '@x/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordFigure } from '../src/figures.js';
import { startGateway, type RunningGateway } from '../src/gateway.js';

const SECTION = 'faults: an instance that cannot start';
let gateway: RunningGateway;

interface BrokenInstance {
  readonly state: string;
  readonly startFailures?: number;
  readonly lastError?: string;
  readonly restartAt?: number;
}

beforeAll(async () => {
  gateway = await startGateway({
    config: {
      modules: {
        broken: {
          versions: {
            v1: {
              backend: { command: process.execPath, args: ['missing.js'] },
              restart: { initialDelayMs: 300, maxDelayMs: 5_000, maxRestarts: 10 },
            },
          },
        },
      },
      dispatch: [
        { url: '*/catalog/*', module: 'catalog' },
        { url: '*/orders/*', module: 'orders' },
        { url: '*/broken/*', module: 'broken' },
      ],
    },
  });
});

afterAll(async () => {
  await gateway?.close();
});

async function broken(): Promise<BrokenInstance | undefined> {
  const state = await gateway.state();
  const mod = state.modules.find(m => m.name === 'broken');
  return mod?.versions[0]?.instances[0] as BrokenInstance | undefined;
}

describe('a version whose process cannot start', () => {
  it('answers 503 INSTANCE_START_FAILED at once with the stderr tail; the dashboard shows the crash loop', async () => {
    const instance = await waitFor(
      async () => {
        // between two tries of the crash loop (a restart in progress shows 'starting')
        const now = await broken();
        return (now?.startFailures ?? 0) >= 2 && now?.state === 'down' ? now : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 50 },
    );
    expect(instance.state).toBe('down');
    expect(instance.lastError).toMatch(/Cannot find module/);

    const timings: number[] = [];
    for (const base of [gateway.url, `${gateway.frontDoorUrl}/`]) {
      const started = performance.now();
      const res = await fetch(`${base}broken/x`, { signal: AbortSignal.timeout(30_000) });
      timings.push(performance.now() - started);
      expect(res.status).toBe(503);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('INSTANCE_START_FAILED');
      expect(body.error.message).toMatch(/broken\/v1 fails to start.*Cannot find module/s);
    }
    // the rest of the gateway is not affected
    const orders = await fetch(`${gateway.url}api/orders/7`);
    expect(orders.status).toBe(200);

    const slowest = Math.max(...timings);
    recordFigure({
      section: SECTION,
      name: 'request to a crash-looping version (gateway and front door): slowest answer',
      value: `${Math.round(slowest)} ms, 503 INSTANCE_START_FAILED`,
      target: '< 2000 ms (was a 10 000 ms NO_CAPACITY wait)',
    });
    expect(slowest).toBeLessThan(2_000);
  });
});
