import { describe, expect, it } from 'vitest';
import { ManualClock } from './manualClock.js';
import { loadBalance } from './loadBalance.js';
import { retry } from './retry.js';
import { pipeline } from './pipeline.js';
import { constantBackoff } from './backoff.js';
import { roundRobin } from './balancers/roundRobin.js';
import { priority } from './balancers/priority.js';
import { NoEndpointError } from './errors.js';
import type { Endpoint } from './endpoint.js';
import type { PolicyContext } from './policy.js';

describe('loadBalance', () => {
  it('function form (dace style): [protocol, netloc] becomes the context endpoint', async () => {
    const asked: Array<{ attempt: number; tried: string[] }> = [];
    const policy = loadBalance(({ attempt, tried }) => {
      asked.push({ attempt, tried: tried.map(t => t.netloc) });
      return ['http', '10.0.0.1:8080'];
    });
    const endpoint = await policy.execute(ctx => ctx.endpoint);
    expect(endpoint).toEqual({
      protocol: 'http:',
      netloc: '10.0.0.1:8080',
      origin: 'http://10.0.0.1:8080',
    });
    expect(asked).toEqual([{ attempt: 0, tried: [] }]);
    expect(policy.pool).toBeUndefined();
  });

  it('function form: a retry is told the attempt and the endpoints tried', async () => {
    const clock = new ManualClock();
    const asked: Array<{ attempt: number; tried: string[] }> = [];
    const hosts = ['a:1', 'b:2', 'c:3'];
    const policy = pipeline(
      retry({ maxRetries: 2, backoff: constantBackoff(0), clock }),
      loadBalance(({ attempt, tried }) => {
        asked.push({ attempt, tried: tried.map(t => t.netloc) });
        return hosts[attempt]!;
      }),
    );
    const used: string[] = [];
    await policy
      .execute(ctx => {
        used.push(ctx.endpoint!.netloc);
        throw new Error('fail');
      })
      .catch(() => {});
    expect(used).toEqual(['a:1', 'b:2', 'c:3']);
    expect(asked).toEqual([
      { attempt: 0, tried: [] },
      { attempt: 1, tried: ['a:1'] },
      { attempt: 2, tried: ['a:1', 'b:2'] },
    ]);
  });

  it('function form: asks again (up to 3 times) when it returns an endpoint already tried', async () => {
    const clock = new ManualClock();
    const answers = ['a:1', 'a:1', 'a:1', 'b:2'];
    let i = 0;
    const policy = pipeline(
      retry({ maxRetries: 1, backoff: constantBackoff(0), clock }),
      loadBalance(() => answers[i++]!),
    );
    const used: string[] = [];
    await policy
      .execute(ctx => {
        used.push(ctx.endpoint!.netloc);
        throw new Error('fail');
      })
      .catch(() => {});
    expect(used).toEqual(['a:1', 'b:2']);
    expect(i).toBe(4);
  });

  it('function form returning garbage rejects with TypeError', async () => {
    for (const garbage of [undefined, null, 42, {}, ['http'], 'not an endpoint/']) {
      const policy = loadBalance(() => garbage as never);
      await expect(policy.execute(() => 'never')).rejects.toBeInstanceOf(TypeError);
    }
  });

  it('list form: round robin over deduplicated endpoints', async () => {
    const policy = loadBalance({
      endpoints: ['http://a:1', 'a:1', ['http', 'b:2'], 'http://c:3'],
      balancer: roundRobin<Endpoint>(),
    });
    expect(policy.pool!.map(e => e.netloc)).toEqual(['a:1', 'b:2', 'c:3']);
    const used: string[] = [];
    for (let i = 0; i < 6; i++) used.push(await policy.execute(ctx => ctx.endpoint!.netloc));
    expect(used).toEqual(['a:1', 'b:2', 'c:3', 'a:1', 'b:2', 'c:3']);
  });

  it('list form: a plain array uses the default least-loaded balancer and spreads concurrent load', async () => {
    const policy = loadBalance(['http://a:1', 'http://b:2']);
    const releases: Array<() => void> = [];
    const counts: Record<string, number> = {};
    const running = Array.from({ length: 20 }, () =>
      policy.execute(ctx => {
        counts[ctx.endpoint!.netloc] = (counts[ctx.endpoint!.netloc] ?? 0) + 1;
        return new Promise<void>(resolve => releases.push(resolve));
      }),
    );
    // least loaded with two endpoints always picks the one with fewer in flight
    expect(counts).toEqual({ 'a:1': 10, 'b:2': 10 });
    releases.forEach(r => r());
    await Promise.all(running);
  });

  it('list form: a retry goes to an endpoint not tried yet, then any when all were tried', async () => {
    const clock = new ManualClock();
    const policy = pipeline(
      retry({ maxRetries: 3, backoff: constantBackoff(0), clock }),
      loadBalance({
        endpoints: ['a:1', 'b:2'],
        balancer: priority<Endpoint>(e => (e.netloc === 'a:1' ? 0 : 1)),
      }),
    );
    const used: string[] = [];
    await policy
      .execute((ctx: PolicyContext) => {
        used.push(ctx.endpoint!.netloc);
        throw new Error('fail');
      })
      .catch(() => {});
    expect(used).toEqual(['a:1', 'b:2', 'a:1', 'a:1']);
  });

  it('tracks outcomes in the balancer', async () => {
    const balancer = roundRobin<Endpoint>();
    const policy = loadBalance({ endpoints: ['a:1'], balancer });
    await policy.execute(() => 1);
    await policy.execute(() => Promise.reject(new Error('x'))).catch(() => {});
    const load = balancer.load(policy.pool![0]!);
    expect(load).toMatchObject({ inFlight: 0, requests: 2, failures: 1, consecutiveFailures: 1 });
  });

  it('NO_ENDPOINT when the balancer finds no eligible endpoint', async () => {
    const policy = loadBalance({
      endpoints: ['a:1', 'b:2'],
      balancer: priority<Endpoint>(() => null),
    });
    let ran = false;
    const error = await policy.execute(() => (ran = true)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NoEndpointError);
    expect(error).toMatchObject({ code: 'NO_ENDPOINT' });
    expect(ran).toBe(false);
  });

  it('rejects an empty or invalid list at construction', () => {
    expect(() => loadBalance([])).toThrow(RangeError);
    expect(() => loadBalance({ endpoints: [] })).toThrow(RangeError);
    expect(() => loadBalance(['http://a:1/path'])).toThrow(TypeError);
  });
});
