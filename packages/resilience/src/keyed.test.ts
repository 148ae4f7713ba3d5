import { describe, expect, it } from 'vitest';
import { ConsecutiveBreaker } from 'cockatiel';
import { ManualClock } from './manualClock.js';
import { keyed, byNetloc } from './keyed.js';
import { circuitBreaker, type CircuitBreaker } from './circuitBreaker.js';
import { bulkhead } from './bulkhead.js';
import { loadBalance } from './loadBalance.js';
import { pipeline } from './pipeline.js';
import { toEndpoint } from './endpoint.js';
import type { PolicyContext, PolicyEvent } from './policy.js';

const ctx = (netloc?: string): PolicyContext => ({
  signal: new AbortController().signal,
  attempt: 0,
  deadline: Infinity,
  endpoint: netloc === undefined ? undefined : toEndpoint(netloc),
});

describe('keyed', () => {
  it('creates one policy per key, on first use', async () => {
    const created: string[] = [];
    const k = keyed(byNetloc(), key => {
      created.push(key);
      return bulkhead(1);
    });
    await k.run(() => 1, ctx('a:1'));
    await k.run(() => 2, ctx('a:1'));
    await k.run(() => 3, ctx('b:2'));
    await k.run(() => 4, ctx());
    expect(created).toEqual(['a:1', 'b:2', 'default']);
    expect(k.size).toBe(3);
    expect(k.get('a:1')).toBe(k.peek('a:1'));
    expect(k.peek('nope')).toBeUndefined();
    expect([...k].map(([key]) => key)).toEqual(['a:1', 'b:2', 'default']);
  });

  it('byNetloc uses the fallback key without an endpoint', () => {
    expect(byNetloc('dep')(ctx())).toBe('dep');
    expect(byNetloc('dep')(ctx('Host:80'))).toBe('host:80');
  });

  it('keys isolate state: one open breaker does not affect another key', async () => {
    const clock = new ManualClock();
    const breakers = keyed(
      byNetloc(),
      key => circuitBreaker({ key, strategy: new ConsecutiveBreaker(1), clock }),
      { clock },
    );
    await breakers.run(() => Promise.reject(new Error('x')), ctx('a:1')).catch(() => {});
    expect(breakers.peek('a:1')!.state).toBe('open');
    await expect(breakers.run(() => 'b', ctx('b:1'))).resolves.toBe('b');
    await expect(breakers.run(() => 'a', ctx('a:1'))).rejects.toMatchObject({
      code: 'CIRCUIT_OPEN',
      key: 'a:1',
    });
  });

  it('maxKeys evicts the least recently used key', async () => {
    const clock = new ManualClock();
    const created: string[] = [];
    const k = keyed(
      c => c.endpoint!.netloc,
      key => {
        created.push(key);
        return bulkhead(1);
      },
      { maxKeys: 2, clock },
    );
    k.get('a');
    await clock.advance(1);
    k.get('b');
    await clock.advance(1);
    k.get('a'); // a is now more recent than b
    await clock.advance(1);
    k.get('c'); // evicts b
    expect([...k].map(([key]) => key).sort()).toEqual(['a', 'c']);
    k.get('b'); // recreated, evicts a (least recent)
    expect(created).toEqual(['a', 'b', 'c', 'b']);
    expect(k.peek('a')).toBeUndefined();
    expect(k.size).toBe(2);
  });

  it('idleTtlMs evicts idle keys (and closes their policy)', async () => {
    const clock = new ManualClock();
    const closed: string[] = [];
    const k = keyed(
      () => 'x',
      key => {
        const b = circuitBreaker({ key, clock });
        const close = b.close.bind(b);
        b.close = () => {
          closed.push(key);
          close();
        };
        return b;
      },
      { idleTtlMs: 1000, clock },
    );
    k.get('idle');
    k.get('busy');
    await clock.advance(600);
    k.get('busy');
    await clock.advance(600); // idle unused for 1200 ms, busy for 600 ms
    k.get('new'); // creating a key sweeps
    expect(k.peek('idle')).toBeUndefined();
    expect(k.peek('busy')).toBeDefined();
    expect(closed).toEqual(['idle']);
    expect(k.size).toBe(2);
  });

  it('merges the events of every key and stops forwarding from dropped keys', async () => {
    const clock = new ManualClock();
    const k = keyed(
      byNetloc(),
      key => circuitBreaker({ key, strategy: new ConsecutiveBreaker(1), clock }),
      { clock },
    );
    const events: PolicyEvent[] = [];
    k.onEvent(e => events.push(e));
    await k.run(() => Promise.reject(new Error('x')), ctx('a:1')).catch(() => {});
    await k.run(() => Promise.reject(new Error('x')), ctx('b:1')).catch(() => {});
    expect(events.filter(e => e.type === 'stateChange')).toEqual([
      { type: 'stateChange', key: 'a:1', from: 'closed', to: 'open' },
      { type: 'stateChange', key: 'b:1', from: 'closed', to: 'open' },
    ]);
    const a = k.peek('a:1') as CircuitBreaker;
    expect(k.delete('a:1')).toBe(true);
    expect(k.delete('a:1')).toBe(false);
    a.isolate();
    expect(events.filter(e => e.type === 'stateChange')).toHaveLength(2);
    k.clear();
    expect(k.size).toBe(0);
  });

  it('works inside a pipeline after a load balancer, through execute', async () => {
    const k = keyed(byNetloc(), () => bulkhead(1));
    const policy = pipeline(loadBalance(['http://h1:1', 'http://h2:2']), k);
    await policy.execute(() => 1);
    await expect(k.execute(() => 2)).resolves.toBe(2);
    const keys = [...k].map(([key]) => key);
    expect(keys).toHaveLength(2);
    expect(keys[0]).toMatch(/^h[12]:[12]$/);
    expect(keys[1]).toBe('default');
  });

  it('rejects (never throws) when the key function throws', async () => {
    const k = keyed(
      () => {
        throw new TypeError('no key');
      },
      () => bulkhead(1),
    );
    await expect(k.execute(() => 1)).rejects.toThrow('no key');
  });

  it('validates options', () => {
    expect(() => keyed(byNetloc(), () => bulkhead(1), { maxKeys: 0 })).toThrow(RangeError);
    expect(() => keyed(byNetloc(), () => bulkhead(1), { maxKeys: 1.5 })).toThrow(RangeError);
    expect(() => keyed(byNetloc(), () => bulkhead(1), { idleTtlMs: 0 })).toThrow(RangeError);
  });
});
