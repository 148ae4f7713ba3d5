import { describe, expect, it } from 'vitest';
import { ManualClock } from '../manualClock.js';
import { memoryMetrics, metricKey } from './memoryMetrics.js';

describe('memoryMetrics', () => {
  it('keys metrics by name and sorted tags', () => {
    expect(metricKey('a')).toBe('a');
    expect(metricKey('a', {})).toBe('a');
    expect(metricKey('a', { z: '1', b: '2' })).toBe('a{b=2,z=1}');
  });

  it('keeps counters, gauges and histogram summaries', () => {
    const metrics = memoryMetrics();
    metrics.increment('calls', undefined, { outcome: 'ok', endpoint: 'a' });
    metrics.increment('calls', 2, { endpoint: 'a', outcome: 'ok' });
    metrics.increment('calls');
    metrics.gauge('inflight', 3);
    metrics.gauge('inflight', 1);
    for (let i = 1; i <= 100; i++) metrics.histogram('latency', i, { endpoint: 'a' });
    const snapshot = metrics.snapshot();
    expect(snapshot.counters).toEqual({ calls: 1, 'calls{endpoint=a,outcome=ok}': 3 });
    expect(Object.keys(snapshot.counters)).toEqual(['calls', 'calls{endpoint=a,outcome=ok}']);
    expect(snapshot.gauges).toEqual({ inflight: 1 });
    const latency = snapshot.histograms['latency{endpoint=a}']!;
    expect(latency.count).toBe(100);
    expect(latency.sum).toBe(5050);
    expect(Math.abs(latency.p50 - 50)).toBeLessThan(1);
    expect(Math.abs(latency.p99 - 99)).toBeLessThan(1.5);
    metrics.reset();
    expect(metrics.snapshot()).toEqual({ counters: {}, gauges: {}, histograms: {} });
  });

  it('can window its histograms', async () => {
    const clock = new ManualClock();
    const metrics = memoryMetrics({ windowMs: 1000, slices: 2, clock });
    metrics.histogram('latency', 5);
    await clock.advance(1000);
    expect(metrics.snapshot().histograms.latency).toEqual({ count: 0, sum: 0, p50: 0, p99: 0 });
  });

  it('rejects bad input', () => {
    const metrics = memoryMetrics();
    expect(() => metrics.increment('', 1)).toThrow(TypeError);
    expect(() => metrics.increment('a', Number.NaN)).toThrow(RangeError);
    expect(() => metrics.gauge('a', Infinity)).toThrow(RangeError);
    expect(() => metrics.histogram('a', -1)).toThrow(RangeError);
    expect(() => memoryMetrics({ windowMs: -1 })).toThrow(RangeError);
  });
});
