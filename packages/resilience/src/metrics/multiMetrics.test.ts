import { describe, expect, it } from 'vitest';
import { memoryMetrics } from './memoryMetrics.js';
import type { Metrics } from './metrics.js';
import { noopMetrics } from './metrics.js';
import { multiMetrics } from './multiMetrics.js';

describe('multiMetrics', () => {
  it('fans every observation out to each sink', () => {
    const a = memoryMetrics();
    const b = memoryMetrics();
    const metrics = multiMetrics(a, b);
    metrics.increment('calls', undefined, { k: 'v' });
    metrics.histogram('latency', 10);
    metrics.gauge('inflight', 2);
    for (const sink of [a, b]) {
      expect(sink.snapshot()).toEqual({
        counters: { 'calls{k=v}': 1 },
        gauges: { inflight: 2 },
        histograms: { latency: { count: 1, sum: 10, p50: 10, p99: 10 } },
      });
    }
  });

  it('keeps going when a sink throws, then rethrows the first error', () => {
    const failing: Metrics = {
      increment() {
        throw new Error('boom');
      },
      histogram() {},
      gauge() {},
    };
    const after = memoryMetrics();
    const metrics = multiMetrics(failing, after);
    expect(() => metrics.increment('calls')).toThrow('boom');
    expect(after.snapshot().counters).toEqual({ calls: 1 });
  });

  it('returns a single sink as is and accepts none', () => {
    expect(multiMetrics(noopMetrics)).toBe(noopMetrics);
    expect(() => multiMetrics().increment('a')).not.toThrow();
    expect(() => multiMetrics({} as never)).toThrow(TypeError);
  });

  it('records histograms unless no sink does (recordsHistograms)', () => {
    const counters: Metrics = { ...noopMetrics, recordsHistograms: false };
    expect(noopMetrics.recordsHistograms).toBe(false);
    expect(multiMetrics(counters, noopMetrics).recordsHistograms).toBe(false);
    expect(multiMetrics(counters, memoryMetrics()).recordsHistograms).toBe(true);
    expect(multiMetrics().recordsHistograms).toBe(false);
  });
});
