import { metrics as otelApi } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import type { MeterLike, OtelAttributes, OtelObservableResultLike } from './otelMetrics.js';
import { otelMetrics } from './otelMetrics.js';

/** A tiny Meter recording every call (no SDK is installed). */
function recordingMeter(withGauge: boolean) {
  const calls: unknown[][] = [];
  const callbacks: ((result: OtelObservableResultLike) => void)[] = [];
  const meter: MeterLike = {
    createCounter(name, options) {
      calls.push(['createCounter', name, options]);
      return { add: (value, attributes) => void calls.push(['add', name, value, attributes]) };
    },
    createHistogram(name, options) {
      calls.push(['createHistogram', name, options]);
      return {
        record: (value, attributes) => void calls.push(['record', name, value, attributes]),
      };
    },
    createObservableGauge(name, options) {
      calls.push(['createObservableGauge', name, options]);
      return { addCallback: callback => void callbacks.push(callback) };
    },
  };
  if (withGauge) {
    meter.createGauge = (name, options) => {
      calls.push(['createGauge', name, options]);
      return { record: (value, attributes) => void calls.push(['set', name, value, attributes]) };
    };
  }
  /** Runs the observable callbacks like a metric reader would. */
  const collect = () => {
    const observed: [number, OtelAttributes | undefined][] = [];
    for (const callback of callbacks) {
      callback({ observe: (value, attributes) => void observed.push([value, attributes]) });
    }
    return observed;
  };
  return { meter, calls, collect };
}

describe('otelMetrics', () => {
  it('creates each instrument once and records with tags as attributes', () => {
    const { meter, calls } = recordingMeter(true);
    const metrics = otelMetrics(meter, { prefix: 'x.' });
    metrics.increment('calls', undefined, { endpoint: 'a' });
    metrics.increment('calls', 2);
    metrics.histogram('latency', 12, { endpoint: 'a' });
    metrics.histogram('latency', 7);
    metrics.gauge('inflight', 3, { pool: 'p' });
    metrics.gauge('inflight', 1, { pool: 'p' });
    expect(calls).toEqual([
      ['createCounter', 'x.calls', undefined],
      ['add', 'x.calls', 1, { endpoint: 'a' }],
      ['add', 'x.calls', 2, undefined],
      ['createHistogram', 'x.latency', { unit: 'ms' }],
      ['record', 'x.latency', 12, { endpoint: 'a' }],
      ['record', 'x.latency', 7, undefined],
      ['createGauge', 'x.inflight', undefined],
      ['set', 'x.inflight', 3, { pool: 'p' }],
      ['set', 'x.inflight', 1, { pool: 'p' }],
    ]);
  });

  it('falls back to an observable gauge holding the last value per tag set', () => {
    const { meter, calls, collect } = recordingMeter(false);
    const metrics = otelMetrics(meter);
    metrics.gauge('inflight', 3, { pool: 'a', zone: 'z' });
    metrics.gauge('inflight', 5, { zone: 'z', pool: 'a' }); // same tag set
    metrics.gauge('inflight', 9, { pool: 'b' });
    metrics.gauge('inflight', 1);
    expect(calls).toEqual([['createObservableGauge', 'inflight', undefined]]);
    expect(collect()).toEqual([
      [5, { pool: 'a', zone: 'z' }],
      [9, { pool: 'b' }],
      [1, undefined],
    ]);
  });

  it('works with the no-op meter of @opentelemetry/api', () => {
    const metrics = otelMetrics(otelApi.getMeter('x'));
    expect(() => {
      metrics.increment('calls', 1, { a: 'b' });
      metrics.histogram('latency', 3, { a: 'b' });
      metrics.gauge('inflight', 2);
    }).not.toThrow();
  });

  it('rejects what is not a meter', () => {
    expect(() => otelMetrics({} as never)).toThrow(TypeError);
    expect(() => otelMetrics(otelApi.getMeter('x'), { prefix: 2 as never })).toThrow(TypeError);
  });
});
