import { createSocket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { StatsD } from 'hot-shots';
import { afterEach, describe, expect, it } from 'vitest';
import type { StatsdClientLike } from './statsdMetrics.js';
import { statsdMetrics } from './statsdMetrics.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A real UDP "StatsD server" on 127.0.0.1 and a real hot-shots client sending to it. */
async function setup(): Promise<{ client: StatsD; received: (n: number) => Promise<string[]> }> {
  const socket = createSocket('udp4');
  const messages: string[] = [];
  let waiter: (() => void) | undefined;
  socket.on('message', data => {
    messages.push(...data.toString('utf8').split('\n').filter(Boolean));
    waiter?.();
  });
  await new Promise<void>(resolve => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address() as AddressInfo;
  const client = new StatsD({ host: '127.0.0.1', port, maxBufferSize: 0, errorHandler: () => {} });
  cleanups.push(
    () => new Promise<void>(resolve => socket.close(() => resolve())),
    () => new Promise<void>(resolve => client.close(() => resolve())),
  );
  const received = (n: number) =>
    new Promise<string[]>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`got ${messages.length}/${n}`)), 2000);
      const check = () => {
        if (messages.length < n) return;
        clearTimeout(timer);
        waiter = undefined;
        resolve([...messages].sort());
      };
      waiter = check;
      check();
    });
  return { client, received };
}

describe('statsdMetrics', () => {
  it('sends counters, histograms and gauges with DogStatsD tags over UDP', async () => {
    const { client, received } = await setup();
    const metrics = statsdMetrics(client, { prefix: 'svc.' });
    metrics.increment('calls', undefined, { endpoint: 'a' });
    metrics.increment('calls', 3);
    metrics.histogram('latency', 12.5, { endpoint: 'a', status: 'ok' });
    metrics.gauge('inflight', 4, { pool: 'p' });
    expect(await received(4)).toEqual(
      [
        'svc.calls:1|c|#endpoint:a',
        'svc.calls:3|c',
        'svc.latency:12.5|h|#endpoint:a,status:ok',
        'svc.inflight:4|g|#pool:p',
      ].sort(),
    );
  });

  it('sends names as they are without a prefix', async () => {
    const { client, received } = await setup();
    const metrics = statsdMetrics(client);
    metrics.increment('resilience.calls', 1, { policy: 'retry' });
    expect(await received(1)).toEqual(['resilience.calls:1|c|#policy:retry']);
  });

  it('accepts any structural client and rejects what is not one', () => {
    const calls: unknown[][] = [];
    const fake: StatsdClientLike = {
      increment: (...args) => void calls.push(['increment', ...args]),
      histogram: (...args) => void calls.push(['histogram', ...args]),
      gauge: (...args) => void calls.push(['gauge', ...args]),
    };
    const metrics = statsdMetrics(fake, { prefix: 'p.' });
    metrics.increment('a');
    metrics.gauge('b', 2);
    expect(calls).toEqual([
      ['increment', 'p.a', 1, undefined],
      ['gauge', 'p.b', 2, undefined],
    ]);
    expect(() => statsdMetrics({} as never)).toThrow(TypeError);
    expect(() => statsdMetrics(fake, { prefix: 1 as never })).toThrow(TypeError);
  });
});
