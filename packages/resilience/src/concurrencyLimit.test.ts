import { describe, expect, it } from 'vitest';
import { concurrencyLimit } from './concurrencyLimit.js';
import { loadBalance } from './loadBalance.js';
import { pipeline } from './pipeline.js';

function gate<T = string>() {
  let release!: (value: T) => void;
  const promise = new Promise<T>(res => (release = res));
  return { promise, release, task: () => promise };
}

describe('concurrencyLimit', () => {
  it('limits per key (the endpoint netloc by default)', async () => {
    const limit = concurrencyLimit({ limit: 1 });
    const hosts = ['a:1', 'b:2', 'a:1'];
    let i = 0;
    const policy = pipeline(
      loadBalance(() => hosts[i++ % hosts.length]!),
      limit,
    );
    const ga = gate();
    const gb = gate();
    const a1 = policy.execute(ga.task);
    const b1 = policy.execute(gb.task);
    await expect(policy.execute(() => 'a again')).rejects.toMatchObject({
      code: 'BULKHEAD_FULL',
      key: 'a:1',
    });
    expect(limit.size).toBe(2);
    expect(limit.peek('a:1')!.running).toBe(1);
    expect(limit.peek('b:2')!.running).toBe(1);
    ga.release('a');
    gb.release('b');
    await expect(Promise.all([a1, b1])).resolves.toEqual(['a', 'b']);
  });

  it('uses a custom key and queue', async () => {
    let tenant = 't1';
    const limit = concurrencyLimit({ limit: 1, queue: 1, key: () => tenant });
    const g = gate();
    const first = limit.execute(g.task);
    const queued = limit.execute(() => 'queued');
    await expect(limit.execute(() => 'no')).rejects.toMatchObject({
      code: 'BULKHEAD_FULL',
      key: 't1',
    });
    tenant = 't2';
    await expect(limit.execute(() => 'other tenant')).resolves.toBe('other tenant');
    g.release('first');
    await expect(Promise.all([first, queued])).resolves.toEqual(['first', 'queued']);
  });
});
