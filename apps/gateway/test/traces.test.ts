import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { waitFor } from '@x/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TraceDetail, TraceSummary, WaterfallSpan } from '../src/traceStore.js';
import {
  ADMIN_TOKEN,
  json,
  removeConfigs,
  startGateway,
  testConfig,
  type RunningGateway,
} from './helpers.js';

afterAll(removeConfigs);

const CHROMIUM = '/usr/bin/chromium';
const SLOW_MS = 400;

interface TraceList {
  enabled: boolean;
  limits: {
    dashboardTraces: number;
    maxSpansPerTrace: number;
    maxSpans: number;
    maxPending: number;
  };
  stored: { traces: number; pending: number; spans: number; endpoints: number; evicted: number };
  ingest: { requests: number; spans: number; refused: number };
  endpoints: { endpoint: string; traces: TraceSummary[] }[];
}

async function ready(gw: RunningGateway): Promise<void> {
  await waitFor(async () => (await fetch(`${gw.url}readyz`)).status === 200, {
    timeoutMs: 90_000,
    intervalMs: 250,
    message: 'the gateway to be ready',
  });
}

/** Searches with a caller trace id, then polls the trace API until `done` holds for the trace. */
async function tracedSearch(
  gw: RunningGateway,
  done: (t: TraceDetail) => boolean,
  q = 'lamp',
): Promise<TraceDetail> {
  const traceId = randomBytes(16).toString('hex');
  const res = await fetch(`${gw.url}api/search?q=${q}`, {
    headers: { traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` },
  });
  expect(res.status).toBe(200);
  await res.arrayBuffer();
  let last: TraceDetail | undefined;
  await waitFor(
    async () => {
      const r = await json<TraceDetail>(`${gw.url}_x/traces/${traceId}`);
      if (r.status !== 200) return false;
      last = r.body;
      return done(r.body);
    },
    { timeoutMs: 15_000, intervalMs: 100, message: `trace ${traceId} to be complete` },
  ).catch((error: Error) => {
    throw new Error(
      `${error.message}: ${JSON.stringify(last?.waterfall.map(s => s.name + '@' + s.service))}`,
    );
  });
  return last!;
}

const catalogSpans = (t: TraceDetail): WaterfallSpan[] =>
  t.waterfall.filter(s => s.service === 'x-catalog');

describe('the dashboard traces of a running gateway', () => {
  let gw: RunningGateway;

  beforeAll(async () => {
    const config = testConfig();
    // catalog instance 1 is the slow shard
    config.modules.catalog.versions.v1.env = {
      CATALOG_SLOW_INSTANCE: '1',
      CATALOG_SLOW_MS: String(SLOW_MS),
    };
    gw = await startGateway(config);
    await ready(gw);
  }, 120_000);

  afterAll(async () => {
    await gw?.process.kill();
  });

  it('puts the spans of the gateway and of >= 2 catalog instances in one search trace, each under its try', async () => {
    const t = await tracedSearch(gw, d => new Set(catalogSpans(d).map(s => s.instance)).size >= 2);
    expect(t.endpoint).toBe('GET /api/search');
    expect(t.status).toBe(200);
    const byId = new Map(t.waterfall.map(s => [s.spanId, s]));
    const entry = t.waterfall[0]!;
    expect(entry).toMatchObject({
      name: 'GET /api/search',
      service: 'x-gateway',
      depth: 0,
      kind: 2,
    });
    for (const c of catalogSpans(t)) {
      expect(c.kind).toBe(2);
      expect(c.instance).toMatch(/^catalog\.v1\.\d$/);
      const parent = byId.get(c.parentSpanId)!;
      // the rest-client try that called this instance, in the gateway
      expect(parent).toMatchObject({ service: 'x-gateway', kind: 3 });
      expect(c.depth).toBe(parent.depth + 1);
      expect(c.attributes['http.route']).toBe('/search');
      let cur: WaterfallSpan = c;
      while (byId.has(cur.parentSpanId)) cur = byId.get(cur.parentSpanId)!;
      expect(cur.spanId).toBe(entry.spanId);
    }
    // and the list shows it under its endpoint
    const list = (await json<TraceList>(`${gw.url}_x/traces`)).body;
    const search = list.endpoints.find(e => e.endpoint === 'GET /api/search')!;
    expect(search.traces.map(x => x.traceId)).toContain(t.traceId);
  });

  it('shows the slow shard as the longest catalog span, under the longest try', async () => {
    let t: TraceDetail | undefined;
    // the balancer picks which replica serves each shard: search until instance 1 took part
    for (let i = 0; i < 30 && t === undefined; i++) {
      const got = await tracedSearch(gw, d => catalogSpans(d).length >= 2, 'a');
      if (catalogSpans(got).some(s => s.instance === 'catalog.v1.1')) t = got;
    }
    expect(t, 'no search reached catalog instance 1 in 30 tries').toBeDefined();
    const catalogs = catalogSpans(t!).sort((a, b) => b.durationMs - a.durationMs);
    expect(catalogs[0]!.instance).toBe('catalog.v1.1');
    expect(catalogs[0]!.durationMs).toBeGreaterThanOrEqual(SLOW_MS);
    const tries = t!.waterfall
      .filter(s => s.service === 'x-gateway' && s.kind === 3)
      .sort((a, b) => b.durationMs - a.durationMs);
    expect(tries[0]!.spanId).toBe(catalogs[0]!.parentSpanId);
  });

  it('attaches a span posted later (OTLP, admin token) to its trace, and refuses one without the token', async () => {
    const t = await tracedSearch(gw, d => catalogSpans(d).length >= 1);
    const spanId = randomBytes(8).toString('hex');
    const now = BigInt(Date.now()) * 1_000_000n;
    const body = JSON.stringify({
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'x-late' } }] },
          scopeSpans: [
            {
              spans: [
                {
                  traceId: t.traceId,
                  spanId,
                  parentSpanId: t.waterfall[0]!.spanId,
                  name: 'late work',
                  kind: 1,
                  startTimeUnixNano: String(now - 5_000_000n),
                  endTimeUnixNano: String(now),
                  status: { code: 2, message: 'it failed' },
                },
              ],
            },
          ],
        },
      ],
    });
    const url = `${gw.url}_x/traces/v1/traces`;
    const headers = { 'content-type': 'application/json' };
    expect((await fetch(url, { method: 'POST', headers, body })).status).toBe(401);
    const res = await fetch(url, {
      method: 'POST',
      headers: { ...headers, authorization: `Bearer ${ADMIN_TOKEN}` },
      body,
    });
    expect(res.status).toBe(200);
    const after = (await json<TraceDetail>(`${gw.url}_x/traces/${t.traceId}`)).body;
    expect(after.error).toBe(true);
    expect(after.waterfall.find(s => s.spanId === spanId)).toMatchObject({
      service: 'x-late',
      depth: 1,
      statusMessage: 'it failed',
    });
    expect((await fetch(`${gw.url}_x/traces/not-a-trace-id`)).status).toBe(400);
    expect((await fetch(`${gw.url}_x/traces/${'0'.repeat(32)}`)).status).toBe(404);
  });

  describe.runIf(existsSync(CHROMIUM))('in Chromium', () => {
    let browser: Browser;
    beforeAll(async () => {
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'],
      });
    });
    afterAll(async () => {
      await browser?.close();
    });

    it('lists the search traces and draws the waterfall of the one clicked', async () => {
      const t = await tracedSearch(
        gw,
        d => new Set(catalogSpans(d).map(s => s.instance)).size >= 2,
      );
      const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
      await page.goto(gw.url + '_x/');
      const button = page.locator(
        `[data-endpoint="GET /api/search"] button[data-trace="${t.traceId}"]`,
      );
      await button.waitFor({ timeout: 10_000 });
      await button.click();
      const rows = page.locator('#waterfall .wf-row');
      await expect.poll(() => rows.count(), { timeout: 5_000 }).toBe(t.waterfall.length);
      // the entry span first, the catalog instances' spans nested under the gateway's tries
      expect(await rows.first().getAttribute('data-service')).toBe('x-gateway');
      const catalogRows = page.locator('#waterfall .wf-row[data-service="x-catalog"]');
      expect(await catalogRows.count()).toBeGreaterThanOrEqual(2);
      for (const depth of await catalogRows.evaluateAll(els =>
        els.map(e => Number(e.getAttribute('data-depth'))),
      ))
        expect(depth).toBeGreaterThanOrEqual(2);
      expect(await page.locator('#waterfall').textContent()).toContain('catalog.v1.');
      // a click on a row shows all its attributes
      await catalogRows.first().click();
      await expect
        .poll(() => page.locator('#waterfall .wf-attrs').textContent())
        .toContain('http.route="/search"');
      await page.close();
    });
  });
});

describe('the trace store of a flooded gateway', () => {
  let gw: RunningGateway;
  const caps = { dashboardTraces: 5, maxSpansPerTrace: 40, maxSpans: 400, sampleRatio: 1 };

  beforeAll(async () => {
    const config = testConfig();
    config.tracing = caps;
    gw = await startGateway(config);
    await ready(gw);
  }, 120_000);

  afterAll(async () => {
    await gw?.process.kill();
  });

  it('holds at most its caps after 2000 requests, and still completes the newest traces', async () => {
    const paths = ['api/search?q=a', 'api/search?q=lamp', 'catalog/info', 'api/orders/7'];
    let sent = 0;
    const worker = async () => {
      while (sent < 2_000) {
        const path = paths[sent++ % paths.length]!;
        const res = await fetch(gw.url + path).catch(() => undefined);
        await res?.arrayBuffer();
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    const check = (list: TraceList) => {
      expect(list.stored.spans).toBeLessThanOrEqual(caps.maxSpans);
      expect(list.stored.pending).toBeLessThanOrEqual(list.limits.maxPending);
      for (const e of list.endpoints) {
        expect(e.traces.length).toBeLessThanOrEqual(caps.dashboardTraces);
        for (const t of e.traces) expect(t.spans).toBeLessThanOrEqual(caps.maxSpansPerTrace);
      }
    };
    const during = (await json<TraceList>(`${gw.url}_x/traces`)).body;
    check(during);
    expect(during.stored.evicted).toBeGreaterThan(0);
    expect(during.ingest.spans).toBeGreaterThan(1_000); // the instances did report
    expect(during.endpoints.map(e => e.endpoint)).toEqual(
      expect.arrayContaining(['GET /api/search', 'GET /*', 'GET /api/orders/:id']),
    );
    // once the instances' last batches are in
    await new Promise(resolve => setTimeout(resolve, 1_500));
    check((await json<TraceList>(`${gw.url}_x/traces`)).body);
    // and a new search still gets its whole trace
    const t = await tracedSearch(gw, d => catalogSpans(d).length >= 2);
    expect(t.waterfall[0]!.name).toBe('GET /api/search');
  }, 180_000);
});
