import * as promClient from 'prom-client';
import { describe, expect, it } from 'vitest';
import { DEFAULT_MS_BUCKETS, prometheusMetrics } from './prometheusMetrics.js';

function lines(text: string): string[] {
  return text.split('\n').filter(line => line !== '' && !line.startsWith('#'));
}

describe('prometheusMetrics', () => {
  it('records counters, histograms and gauges in a registry', async () => {
    const registry = new promClient.Registry();
    const metrics = prometheusMetrics(promClient, { registry });
    metrics.increment('resilience.calls', undefined, { endpoint: 'a', outcome: 'ok' });
    metrics.increment('resilience.calls', 2, { endpoint: 'a', outcome: 'ok' });
    metrics.increment('resilience.calls', 1, { endpoint: 'b' }); // missing key → ''
    metrics.histogram('resilience.latency', 7, { endpoint: 'a' });
    metrics.histogram('resilience.latency', 300, { endpoint: 'a' });
    metrics.gauge('resilience.in.flight', 4);
    const text = await registry.metrics();
    expect(text).toContain('# HELP x_resilience_calls_total resilience.calls');
    expect(text).toContain('# TYPE x_resilience_calls_total counter');
    expect(text).toContain('# TYPE x_resilience_latency_ms histogram');
    expect(lines(text)).toEqual([
      'x_resilience_calls_total{endpoint="a",outcome="ok"} 3',
      'x_resilience_calls_total{endpoint="b",outcome=""} 1',
      ...DEFAULT_MS_BUCKETS.map(
        b =>
          `x_resilience_latency_ms_bucket{le="${b}",endpoint="a"} ${b >= 300 ? 2 : b >= 7 ? 1 : 0}`,
      ),
      'x_resilience_latency_ms_bucket{le="+Inf",endpoint="a"} 2',
      'x_resilience_latency_ms_sum{endpoint="a"} 307',
      'x_resilience_latency_ms_count{endpoint="a"} 2',
      'x_resilience_in_flight 4',
    ]);
  });

  it('applies prefix, suffix rules, label sanitising and custom buckets', async () => {
    const registry = new promClient.Registry();
    const metrics = prometheusMetrics(promClient, { registry, prefix: 'svc_', buckets: [10, 100] });
    metrics.histogram('http.duration_ms', 50, { 'status.code': '200' });
    metrics.increment('jobs_total', 1, { queue: 'q', extra: 'x' });
    metrics.increment('jobs_total', 1, { queue: 'q', other: 'dropped' }); // extra keys dropped
    expect(lines(await registry.metrics())).toEqual([
      'svc_http_duration_ms_bucket{le="10",status_code="200"} 0',
      'svc_http_duration_ms_bucket{le="100",status_code="200"} 1',
      'svc_http_duration_ms_bucket{le="+Inf",status_code="200"} 1',
      'svc_http_duration_ms_sum{status_code="200"} 50',
      'svc_http_duration_ms_count{status_code="200"} 1',
      'svc_jobs_total{queue="q",extra="x"} 1',
      'svc_jobs_total{queue="q",extra=""} 1',
    ]);
  });

  it('reuses a metric already in the registry', async () => {
    const registry = new promClient.Registry();
    prometheusMetrics(promClient, { registry }).increment('a', 1, { k: 'v' });
    prometheusMetrics(promClient, { registry }).increment('a', 1, { k: 'v' });
    expect(lines(await registry.metrics())).toEqual(['x_a_total{k="v"} 2']);
  });

  it('rejects bad arguments', () => {
    expect(() => prometheusMetrics({} as never)).toThrow(TypeError);
    expect(() => prometheusMetrics(promClient, { buckets: [] })).toThrow(RangeError);
    expect(() => prometheusMetrics(promClient, { buckets: [5, 1] })).toThrow(RangeError);
    expect(() => prometheusMetrics(promClient, { buckets: [1, Number.NaN] })).toThrow(RangeError);
  });
});
