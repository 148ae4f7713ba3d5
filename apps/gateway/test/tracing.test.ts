import { randomBytes } from 'node:crypto';
import { startOtlpReceiver, waitFor, type OtlpReceiver } from '@x/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTracing } from '../src/tracing.js';
import { removeConfigs, startGateway, testConfig, type RunningGateway } from './helpers.js';

afterAll(removeConfigs);

const traceparent = () => {
  const traceId = randomBytes(16).toString('hex');
  const spanId = randomBytes(8).toString('hex');
  return { traceId, spanId, header: `00-${traceId}-${spanId}-01` };
};

describe('startTracing', () => {
  it('starts nothing without an OTLP endpoint, or when the SDK or the exporter is turned off', () => {
    expect(startTracing({}, 'x')).toBeUndefined();
    const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1' };
    expect(startTracing({ ...endpoint, OTEL_SDK_DISABLED: 'true' }, 'x')).toBeUndefined();
    expect(startTracing({ ...endpoint, OTEL_TRACES_EXPORTER: 'none' }, 'x')).toBeUndefined();
  });
});

describe('the gateway and its instances export spans to OTEL_EXPORTER_OTLP_ENDPOINT', () => {
  let receiver: OtlpReceiver;
  let gateway: RunningGateway;

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    gateway = await startGateway(testConfig(), {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_SERVICE_NAME: 'gateway-under-test',
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
    });
    let readiness = '';
    await waitFor(
      async () => {
        const res = await fetch(`${gateway.url}readyz`);
        readiness = await res.text();
        return res.status === 200;
      },
      { timeoutMs: 90_000, intervalMs: 250, message: 'the gateway to be ready' },
    ).catch((error: Error) => {
      throw new Error(`${error.message}: ${readiness}`);
    });
  }, 150_000);

  afterAll(async () => {
    await gateway?.process.kill();
    await receiver?.close();
  });

  it('continues the caller trace in a server span per API request (HTTP semantic conventions)', async () => {
    const parent = traceparent();
    const res = await fetch(`${gateway.url}api/search?q=lamp`, {
      headers: { traceparent: parent.header },
    });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    const [span] = await receiver.waitForSpans(
      s => s.traceId === parent.traceId && s.name === 'GET /api/search',
    );
    expect(span).toMatchObject({
      service: 'gateway-under-test',
      name: 'GET /api/search',
      kind: 2,
      parentSpanId: parent.spanId,
      attributes: {
        'http.request.method': 'GET',
        'http.route': '/api/search',
        'url.path': '/api/search',
        'http.response.status_code': 200,
      },
    });
    expect(receiver.requests.json).toBeGreaterThan(0);
    // the fan-out: rest-client try spans in the gateway, each continued by a catalog instance
    const catalogs = await receiver.waitForSpans(
      s => s.traceId === parent.traceId && s.service === 'x-catalog',
      2,
    );
    const inTrace = receiver.spans.filter(s => s.traceId === parent.traceId);
    const byId = new Map(inTrace.map(s => [s.spanId, s]));
    const tries = catalogs.map(c => byId.get(c.parentSpanId));
    for (const t of tries) {
      expect(t?.service).toBe('gateway-under-test');
      expect(t?.kind).toBe(3); // CLIENT
    }
    // at least two instances (two ports) served the search, all in the caller's one trace
    expect(new Set(tries.map(t => t!.attributes['server.port'])).size).toBeGreaterThanOrEqual(2);
    // and every gateway span of the search descends from the edge span
    const root = (s: (typeof inTrace)[number]): string => {
      let cur = s;
      while (byId.has(cur.parentSpanId)) cur = byId.get(cur.parentSpanId)!;
      return cur.spanId;
    };
    for (const c of catalogs) expect(root(c)).toBe(span!.spanId);
  });

  it('carries the trace through the front door into the instance that served the request', async () => {
    const parent = traceparent();
    const res = await fetch(`${gateway.url}catalog/info`, {
      headers: { traceparent: parent.header },
    });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    // the gateway's edge span → the front door's span → the catalog instance's span
    const spans = await receiver.waitForSpans(s => s.traceId === parent.traceId, 3);
    const edge = spans.find(s => s.service === 'gateway-under-test' && s.name === 'GET /*')!;
    const door = spans.find(s => s.service === 'gateway-under-test' && s.name === 'GET catalog')!;
    const instance = spans.find(s => s.service === 'x-catalog')!;
    expect(edge.parentSpanId).toBe(parent.spanId);
    expect(door.parentSpanId).toBe(edge.spanId);
    expect(door.attributes['x.module']).toBe('catalog');
    expect(instance.parentSpanId).toBe(door.spanId);
    expect(instance.kind).toBe(2);
    expect(instance.attributes['url.path']).toBe('/catalog/info');
  });

  it('carries the trace into the report worker that ran /api/reports', async () => {
    const parent = traceparent();
    const res = await fetch(`${gateway.url}api/reports`, {
      method: 'POST',
      headers: { traceparent: parent.header, 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'sales', rows: 3 }),
    });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    const [worker] = await receiver.waitForSpans(
      s => s.traceId === parent.traceId && s.service === 'x-reports',
    );
    // the gateway and the worker export in their own batches: wait for the attempt too
    await receiver.waitForSpans(s => s.spanId === worker!.parentSpanId);
    const inTrace = receiver.spans.filter(s => s.traceId === parent.traceId);
    const attempt = inTrace.find(s => s.spanId === worker!.parentSpanId);
    expect(worker!.kind).toBe(2); // SERVER
    expect(attempt?.service).toBe('gateway-under-test');
    expect(attempt?.kind).toBe(3); // CLIENT: the worker-rpc attempt
    expect(
      inTrace.some(s => s.name === 'POST /api/reports' && s.parentSpanId === parent.spanId),
    ).toBe(true);
  });
});
