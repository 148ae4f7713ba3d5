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
    const [span] = await receiver.waitForSpans(s => s.traceId === parent.traceId);
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
  });

  it('carries the trace through the front door into the instance that served the request', async () => {
    const parent = traceparent();
    const res = await fetch(`${gateway.url}catalog/info`, {
      headers: { traceparent: parent.header },
    });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    const spans = await receiver.waitForSpans(s => s.traceId === parent.traceId, 2);
    const services = spans.map(s => s.service).sort();
    expect(services).toEqual(['gateway-under-test', 'x-catalog']);
    const instance = spans.find(s => s.service === 'x-catalog')!;
    expect(instance.kind).toBe(2);
    expect(instance.attributes['url.path']).toBe('/catalog/info');
  });
});
