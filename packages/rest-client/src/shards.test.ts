import { startTestServers, type TestServer } from '@x/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import type { BroadcastError } from './errors.js';
import { Shards } from './shards.js';

const open: Array<{ close(): Promise<void> }> = [];
function track<T extends { close(): Promise<void> }>(value: T): T {
  open.push(value);
  return value;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map(x => x.close()));
});

/** lupyne's tests/test_distributed.py layout: keys 0:{h0,h1}, 1:{h0,h2}, 2:{h1,h2}. */
async function distributed(options: ConstructorParameters<typeof Shards>[1] = {}) {
  const servers = await startTestServers(3, req => ({
    body: { host: req.headers.host, path: req.path, keys: req.query.getAll('key') },
  }));
  for (const s of servers) track(s);
  const [h0, h1, h2] = servers.map(s => s.url) as [string, string, string];
  const shards = track(
    new Shards<number>({ [h0]: [0, 1], [h1]: [0, 2], [h2]: [1, 2] }, { health: false, ...options }),
  );
  return { servers: servers as [TestServer, TestServer, TestServer], h0, h1, h2, shards };
}

describe("Shards: lupyne's distributed scenario", () => {
  it('multicast([0]) uses 1 host, [0,1] uses h0 alone, [0,1,2] uses 2 hosts', async () => {
    const { shards, h0, h1, h2 } = await distributed();
    expect(shards.hostsFor(0)).toEqual([h0, h1]);
    expect(shards.hostsFor(2)).toEqual([h1, h2]);
    const one = await shards.multicast([0], 'GET', '/search');
    expect(one.hosts).toHaveLength(1);
    expect([h0, h1]).toContain(one.assignment.get(0));
    const two = await shards.multicast([0, 1], 'GET', '/search');
    expect(two.hosts).toEqual([h0]);
    expect([...two.assignment]).toEqual([
      [0, h0],
      [1, h0],
    ]);
    const three = await shards.multicast([0, 1, 2], 'GET', '/search');
    expect(three.hosts).toHaveLength(2);
    expect(three.responses.size).toBe(2);
    expect(three.uncovered).toEqual([]);
    for (const key of [0, 1, 2]) expect(shards.hostsFor(key)).toContain(three.assignment.get(key));
    expect(three.complete).toBe(true);
  });

  it('with h0 stopped, broadcast(0) fails but multicast([0,1,2]) still succeeds through {h1, h2}', async () => {
    const { shards, servers, h0, h1, h2 } = await distributed();
    await servers[0].close();
    const error = (await shards.broadcast(0, 'GET', '/search').catch(e => e)) as BroadcastError;
    expect(error.code).toBe('BROADCAST');
    expect(error.result.failures.get(h0)).toMatchObject({ code: 'CONNECT' });
    // As in lupyne, the failure makes h0 the worse choice: no re-cover needed.
    const result = await shards.multicast([0, 1, 2], 'GET', '/search', { recover: false });
    expect([...result.hosts].sort()).toEqual([h1, h2].sort());
    expect(result.failures.size).toBe(0);
    expect(shards.priority([h0])![1]).toBeGreaterThan(shards.priority([h1])![1]);
  });

  it('with h0 stopped and no prior failure, re-cover serves every key from the other replicas', async () => {
    const { shards, servers, h0, h1, h2 } = await distributed();
    await servers[0].close();
    for (let i = 0; i < 5; i++) {
      const result = await shards.multicast([0, 1, 2], 'GET', '/search');
      expect(result.satisfied).toBe(true);
      expect(result.uncovered).toEqual([]);
      for (const key of [0, 1, 2]) expect([h1, h2]).toContain(result.assignment.get(key));
      if (result.hosts.includes(h0))
        expect(result.failures.get(h0)).toMatchObject({ code: 'CONNECT' });
    }
    // Without re-cover, a cover through h0 fails: keys stay uncovered and mode 'all' rejects.
    const fresh = await distributed();
    await fresh.servers[0].close();
    const error = (await fresh.shards
      .multicast([0, 1], 'GET', '/search', { recover: false })
      .catch(e => e)) as BroadcastError;
    expect(error.code).toBe('BROADCAST');
    expect((error.result as unknown as { uncovered: number[] }).uncovered).toEqual([0, 1]);
    const settled = await fresh.shards.multicast([0, 1], 'GET', '/search', {
      recover: false,
      mode: 'settled',
    });
    expect(settled.uncovered).toHaveLength(2);
  });

  it("with a path function, a host reassigned a failed host's keys is asked for them (no silent loss)", async () => {
    // h0 answers 503; for every cover that went through h0, its keys move to h1/h2, which may
    // already have answered for other keys: each assigned key must be in its host's answer.
    for (let run = 0; run < 10; run++) {
      const { shards, servers } = await distributed();
      servers[0].setScript({ status: 503, body: { error: 'down' } });
      const result = await shards.multicast<{ keys: string[] }>(
        [0, 1, 2],
        'GET',
        (_host, keys) => `/search?${keys.map(k => `key=${k}`).join('&')}`,
      );
      expect(result.satisfied).toBe(true);
      for (const key of [0, 1, 2]) {
        const host = result.assignment.get(key)!;
        expect(result.responses.get(host)?.body.keys).toContain(String(key));
      }
    }
  });

  it('unicast(key) goes to a replica of the key; a path function asks each host for its keys only', async () => {
    const { shards, servers, h0, h1 } = await distributed();
    for (let i = 0; i < 6; i++) {
      const response = await shards.unicast(0, 'GET', '/one');
      expect([h0, h1]).toContain(response.host);
    }
    expect(servers[2].requestCount).toBe(0);
    const result = await shards.multicast(
      [0, 1, 2],
      'GET',
      (_host, keys) => `/search?${keys.map(k => `key=${k}`).join('&')}`,
    );
    let asked = 0;
    for (const [host, response] of result.responses) {
      const keys = (response.body as { keys: string[] }).keys.map(Number);
      asked += keys.length;
      for (const key of keys) expect(result.assignment.get(key)).toBe(host);
    }
    expect(asked).toBe(3);
  });

  it('unknown keys and eliminated hosts give NO_HOST', async () => {
    const { shards, h0, h1, h2 } = await distributed({ priority: () => null });
    expect(() => shards.cover([0])).toThrow(expect.objectContaining({ code: 'NO_HOST' }));
    await expect(shards.multicast([0], 'GET', '/x')).rejects.toMatchObject({ code: 'NO_HOST' });
    await expect(shards.unicast(9 as number, 'GET', '/x')).rejects.toMatchObject({
      code: 'NO_HOST',
    });
    expect(shards.priority([h0])).toBeNull();
    expect(() => shards.choice([[h0, h1], [h2]])).toThrow(
      expect.objectContaining({ code: 'NO_HOST' }),
    );
  });

  it('a subclass overriding priority(hosts) steers multicast (lupyne: multicast = self.choice(covers) by priority)', async () => {
    // lupyne/client.py Shards.multicast chose among candidate covers with self.choice, which
    // ranks them by self.priority(hosts); None eliminates a set
    const servers = await startTestServers(3, req => ({ body: { keys: req.query.getAll('key') } }));
    for (const s of servers) track(s);
    const [h0, h1, h2] = servers.map(s => s.url) as [string, string, string];
    class AvoidH0 extends Shards<number> {
      override priority(hosts: Iterable<string>): readonly [number, number] | null {
        const list = [...hosts];
        return list.includes(h0) ? null : super.priority(list);
      }
    }
    const shards = track(
      new AvoidH0({ [h0]: [0, 1], [h1]: [0, 2], [h2]: [1, 2] }, { health: false }),
    );
    const result = await shards.multicast([0, 1], 'GET', '/search');
    expect([...result.hosts].sort()).toEqual([h1, h2].sort()); // h0 alone would cover both
    expect(servers[0]!.requestCount).toBe(0);
  });

  it('choice over candidate sets: fewest hosts, then lowest summed priority', async () => {
    const { shards, h0, h1, h2 } = await distributed();
    expect(shards.choice([[h0, h1], [h2], [h0, h1, h2]])).toEqual([h2]);
    expect(shards.priority([h0, h1])).toEqual([2, 0]);
  });

  it('accepts (host, key) pairs and Maps; rejects bad input', async () => {
    const { servers } = await distributed();
    const pairs = track(
      new Shards<string>([
        [servers[0].url, 'a'],
        [servers[1].url, 'a'],
        [servers[1].url, 'b'],
      ]),
    );
    expect(pairs.hostsFor('a')).toHaveLength(2);
    expect([...pairs.keys()]).toEqual(['a', 'b']);
    const map = track(new Shards(new Map([[servers[2].url, ['z']]])));
    expect(map.cover(['z']).hosts).toEqual([servers[2].url]);
    expect(() => new Shards(42 as never)).toThrow(TypeError);
    expect(() => new Shards([['http://h:1', {} as never]])).toThrow(TypeError);
    await expect(
      pairs.multicast(['a'], 'GET', '/x', { mode: 'first' as never }),
    ).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
  });
});
