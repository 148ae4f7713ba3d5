// Load: the gateway (its CLI, a real child process with real catalog instances) under a
// fixed-concurrency autocannon load on `GET /api/search`, which fans out over the catalog shards.
// Healthy, it answers every request with a 2xx; with one catalog instance SIGKILLed during the run,
// at least 99% still succeed and none takes longer than the search deadline of the configuration.
import { setTimeout as delay } from 'node:timers/promises';
import { waitFor } from '@x/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAutocannon, type AutocannonResult } from '../src/autocannon.js';
import { recordFigure } from '../src/figures.js';
import { defaultGatewayConfig, startGateway, type RunningGateway } from '../src/gateway.js';
import { sized } from '../src/profile.js';
import { percent } from '../src/stats.js';

const CONNECTIONS = 32;
const PHASE_SECONDS = sized({ quick: 8, long: 30 });
/**
 * Unmeasured load first: the gateway and its instances are slow for their first seconds (JIT); a
 * phase right after start measured 500-1 000 req/s, later ones 1 500-2 000.
 */
const WARM_UP_SECONDS = sized({ quick: 8, long: 10 });
const KILL_AFTER_MS = 2_000;
/** `resilience.search.timeoutMs` of the gateway's own configuration: the search deadline. */
const SEARCH_TIMEOUT_MS = (
  defaultGatewayConfig() as { resilience: { search: { timeoutMs: number } } }
).resilience.search.timeoutMs;
const phaseTimeoutMs = PHASE_SECONDS * 1_000 + 30_000;

function record(phase: string, result: AutocannonResult): void {
  const section = 'load';
  const answered = result['2xx'] + result.non2xx;
  recordFigure({ section, name: `${phase}: requests`, value: answered + result.errors });
  recordFigure({ section, name: `${phase}: req/s`, value: Math.round(answered / result.duration) });
  for (const q of ['p50', 'p99', 'max'] as const)
    recordFigure({
      section,
      name: `${phase}: latency ${q} (ms)`,
      value: result.latency[q],
      target: q === 'p50' ? undefined : `<= ${SEARCH_TIMEOUT_MS} (search timeout)`,
    });
  const zero = phase === 'healthy' ? '0' : undefined;
  recordFigure({
    section,
    name: `${phase}: errors (timeouts)`,
    value: `${result.errors} (${result.timeouts})`,
    target: zero && `${zero} (0)`,
  });
  recordFigure({ section, name: `${phase}: non-2xx`, value: result.non2xx, target: zero });
}

/** Share of requests answered 2xx (errors and timeouts count as failures). */
function successRate(result: AutocannonResult): { ok: number; total: number } {
  return { ok: result['2xx'], total: result['2xx'] + result.non2xx + result.errors };
}

describe(`load: ${CONNECTIONS} connections on /api/search for ${PHASE_SECONDS} s per phase`, () => {
  let gateway: RunningGateway;
  let searchUrl: string;

  beforeAll(async () => {
    gateway = await startGateway();
    searchUrl = `${gateway.url}api/search?q=lamp`;
    await waitFor(
      async () => {
        const response = await fetch(searchUrl);
        return (
          response.status === 200 && !((await response.json()) as { partial: boolean }).partial
        );
      },
      { timeoutMs: 15_000, intervalMs: 100, message: 'search never answered from every shard' },
    );
    await runAutocannon({
      url: searchUrl,
      connections: CONNECTIONS,
      durationSeconds: WARM_UP_SECONDS,
    });
  }, 90_000);
  afterAll(() => gateway?.close());

  it('healthy: every request answers 2xx', { timeout: phaseTimeoutMs }, async () => {
    const result = await runAutocannon({
      url: searchUrl,
      connections: CONNECTIONS,
      durationSeconds: PHASE_SECONDS,
    });
    record('healthy', result);
    expect(result['2xx']).toBeGreaterThan(0);
    expect(result.errors).toBe(0);
    expect(result.non2xx, JSON.stringify(result.statusCodeStats)).toBe(0);
  });

  it(
    `one catalog instance SIGKILLed ${KILL_AFTER_MS} ms in: >= 99% succeed within the search timeout`,
    { timeout: phaseTimeoutMs },
    async () => {
      const [victim] = await gateway.instancePids('catalog', 'v1');
      expect(victim).toBeDefined();
      const load = runAutocannon({
        url: searchUrl,
        connections: CONNECTIONS,
        durationSeconds: PHASE_SECONDS,
      });
      await delay(KILL_AFTER_MS);
      process.kill(victim!, 'SIGKILL');
      const result = await load;
      record('one catalog instance killed', result);
      const { ok, total } = successRate(result);
      recordFigure({
        section: 'load',
        name: 'one catalog instance killed: success',
        value: percent(ok, total),
        target: '>= 99%',
      });

      expect(await gateway.instancePids('catalog', 'v1')).not.toContain(victim);
      expect(ok).toBeGreaterThan(0);
      expect(ok / total).toBeGreaterThanOrEqual(0.99);
      expect(result.timeouts).toBe(0);
      expect(result.latency.p99).toBeLessThanOrEqual(SEARCH_TIMEOUT_MS);
      expect(result.latency.max).toBeLessThanOrEqual(SEARCH_TIMEOUT_MS);
    },
  );
});
