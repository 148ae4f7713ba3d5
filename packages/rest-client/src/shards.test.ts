import { startTestServers, type TestServer } from '@x/testkit';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import type { BroadcastError } from './broadcastError.js';
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

/** lupyne's layout with hosts configured as lupyne did: `127.0.0.1:PORT`, not URLs. */
async function configuredAsHostPort(options: ConstructorParameters<typeof Shards>[1] = {}) {
  const servers = await startTestServers(3, req => ({
    body: { path: req.path, keys: req.query.getAll('key') },
  }));
  for (const s of servers) track(s);
  const origins = servers.map(s => s.url) as [string, string, string];
  const [p0, p1, p2] = servers.map(s => `127.0.0.1:${s.port}`) as [string, string, string];
  const shards = track(
    new Shards<number>({ [p0]: [0, 1], [p1]: [0, 2], [p2]: [1, 2] }, { health: false, ...options }),
  );
  return { servers: servers as [TestServer, TestServer, TestServer], origins, p0, p1, p2, shards };
}

describe('Shards: hosts in the form they were configured (host:port)', () => {
  it('a lupyne-style priority callback on host:port eliminates that host from multicast covers', async () => {
    const seen = new Set<string>();
    let eliminate = '';
    const { shards, servers, origins, p0, p1, p2 } = await configuredAsHostPort({
      priority: (host, stats) => {
        seen.add(host);
        return host === eliminate ? null : stats.inFlight;
      },
    });
    eliminate = p0;
    for (let i = 0; i < 5; i++) {
      const result = await shards.multicast([0, 1], 'GET', '/search');
      // p0 alone would cover both keys: eliminated, the cover is {p1, p2}.
      expect([...result.hosts].sort()).toEqual([p1, p2].sort());
      expect([...result.responses.keys()].sort()).toEqual([p1, p2].sort());
      expect(result.assignment.get(0)).toBe(p1);
      expect(result.assignment.get(1)).toBe(p2);
    }
    expect(servers[0].requestCount).toBe(0);
    expect([...seen].sort()).toEqual([p0, p1, p2].sort()); // never an origin
    // priority() and the Resources underneath accept either form, for a live host too.
    expect(shards.priority([p0])).toBeNull();
    expect(shards.priority([origins[0]])).toBeNull();
    expect(shards.priority([p1, origins[2]])).toEqual([2, 0]);
    expect(shards.resources.priority(p1)).toBe(0);
    expect(shards.resources.priority(p0)).toBeNull();
    expect(() => shards.cover([0], new Set([p1]))).toThrow(
      expect.objectContaining({ code: 'NO_HOST' }),
    );
    expect(shards.choice([[p0], [origins[1], p2], [origins[1]]])).toEqual([p1]);
    eliminate = '';
    expect(shards.cover([0, 1]).hosts).toEqual([p0]);
  });

  it('hostsFor, cover and multicast results name hosts as configured; exclude accepts either form', async () => {
    const { shards, servers, origins, p0, p1, p2 } = await configuredAsHostPort();
    expect(shards.hostsFor(0)).toEqual([p0, p1]);
    expect(shards.hostsFor(2)).toEqual([p1, p2]);
    const cover = shards.cover([0, 1]);
    expect(cover.hosts).toEqual([p0]);
    expect([...cover.assignment]).toEqual([
      [0, p0],
      [1, p0],
    ]);
    for (const exclude of [new Set([p0]), new Set([origins[0]]), [origins[0], 'nowhere:1']]) {
      const without = shards.cover([0, 1], exclude);
      expect([...without.hosts].sort()).toEqual([p1, p2].sort());
      expect(without.assignment.get(0)).toBe(p1);
    }
    expect(shards.choice([[origins[0]], [p1, p2]])).toEqual([p0]);
    // A path function gets the configured form; a failed host is re-covered and named as configured.
    servers[0].setScript({ status: 503, body: { error: 'down' } });
    const paths: string[] = [];
    const result = await shards.multicast<{ keys: string[] }>([0, 1], 'GET', (host, keys) => {
      paths.push(host);
      return `/search?${keys.map(k => `key=${k}`).join('&')}`;
    });
    expect(paths[0]).toBe(p0);
    expect(result.hosts[0]).toBe(p0);
    expect([...result.hosts.slice(1)].sort()).toEqual([p1, p2].sort());
    expect(result.responses.get(p0)?.status).toBe(503);
    expect(result.responses.get(p0)?.host).toBe(origins[0]); // a Response names its origin
    expect(result.assignment.get(0)).toBe(p1);
    expect(result.assignment.get(1)).toBe(p2);
    expect(result.responses.get(p1)?.body.keys).toEqual(['0']);
    expect(result.responses.get(p2)?.body.keys).toEqual(['1']);
    const unicast = await shards.unicast(2, 'GET', '/one');
    expect([origins[1], origins[2]]).toContain(unicast.host);
  });

  it('a subclass overriding priority(hosts) receives the configured form', async () => {
    const servers = await startTestServers(3, () => ({ body: {} }));
    for (const s of servers) track(s);
    const [p0, p1, p2] = servers.map(s => `127.0.0.1:${s.port}`) as [string, string, string];
    const seen = new Set<string>();
    class AvoidP0 extends Shards<number> {
      override priority(hosts: Iterable<string>): readonly [number, number] | null {
        const list = [...hosts];
        for (const host of list) seen.add(host);
        return list.includes(p0) ? null : super.priority(list);
      }
    }
    const shards = track(
      new AvoidP0({ [p0]: [0, 1], [p1]: [0, 2], [p2]: [1, 2] }, { health: false }),
    );
    const result = await shards.multicast([0, 1], 'GET', '/search');
    expect([...result.hosts].sort()).toEqual([p1, p2].sort());
    expect(servers[0]!.requestCount).toBe(0);
    expect(shards.choice([[servers[0]!.url], [servers[1]!.url, p2]])).toEqual([p1, p2]);
    expect([...seen].sort()).toEqual([p0, p1, p2].sort());
  });

  it('a mix of forms for one host is one host, named by the first form configured', async () => {
    const servers = await startTestServers(2, () => ({ body: {} }));
    for (const s of servers) track(s);
    const [o0, o1] = servers.map(s => s.url) as [string, string];
    const [p0, p1] = servers.map(s => `127.0.0.1:${s.port}`) as [string, string];
    const seen = new Set<string>();
    const shards = track(
      new Shards<string>(
        [
          [p0, 'a'],
          [o1, 'a'],
          [o0, 'b'],
          [p1, 'b'],
          [`${o0}/`, 'c'],
        ],
        {
          health: false,
          priority: host => {
            seen.add(host);
            return 0;
          },
        },
      ),
    );
    expect(shards.hostsFor('a')).toEqual([p0, o1]);
    expect(shards.hostsFor('b')).toEqual([p0, o1]);
    expect(shards.hostsFor('c')).toEqual([p0]);
    expect(shards.resources.size).toBe(2);
    expect(shards.resources.hosts).toEqual([o0, o1]);
    const cover = shards.cover(['a', 'b', 'c']);
    expect(cover.hosts).toEqual([p0]);
    expect(shards.cover(['a', 'b'], [o0]).hosts).toEqual([o1]);
    expect(shards.cover(['a', 'b'], [p1]).hosts).toEqual([p0]);
    const result = await shards.multicast(['a', 'b', 'c'], 'GET', '/x');
    expect(result.hosts).toEqual([p0]);
    expect([...result.responses.keys()]).toEqual([p0]);
    expect(servers[0]!.requestCount).toBe(1);
    expect([...seen].sort()).toEqual([p0, o1].sort());
  });
});

/** `count` hosts that are never contacted (undici pools connect lazily). */
const fakeHosts = (count: number) =>
  Array.from({ length: count }, (_, i) => `http://10.9.${i >> 8}.${i & 255}:9200`);

/** The fewest eligible hosts covering `keys`, then their lowest priority sum (brute force). */
function bruteForceCover(
  shards: Shards<number>,
  keys: readonly number[],
  eligible: readonly string[],
  priority: (host: string) => number,
): [number, number] {
  let best: [number, number] = [Infinity, Infinity];
  for (let mask = 1; mask < 1 << eligible.length; mask++) {
    const chosen = eligible.filter((_, i) => (mask >> i) & 1);
    if (!keys.every(key => shards.hostsFor(key).some(h => chosen.includes(h)))) continue;
    const sum = chosen.reduce((s, h) => s + priority(h), 0);
    if (chosen.length < best[0] || (chosen.length === best[0] && sum < best[1]))
      best = [chosen.length, sum];
  }
  return best;
}

describe('Shards.cover planning', () => {
  it('property: a cover is valid: every key on a live replica in the cover, no host outside the placement, none redundant', async () => {
    const made: Shards<number>[] = [];
    try {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 20 }).chain(h =>
            fc.record({
              placement: fc.array(
                fc.uniqueArray(fc.integer({ min: 0, max: h - 1 }), { minLength: 1, maxLength: h }),
                { minLength: 1, maxLength: 30 },
              ),
              priorities: fc.array(fc.option(fc.integer({ min: 0, max: 5 }), { freq: 4 }), {
                minLength: h,
                maxLength: h,
              }),
              excluded: fc.uniqueArray(fc.integer({ min: 0, max: h - 1 }), { maxLength: 3 }),
              asked: fc.array(fc.nat(), { minLength: 1, maxLength: 40 }),
              mode: fc.constantFrom('auto', 'greedy', 'exact'),
              seed: fc.integer(),
            }),
          ),
          ({ placement, priorities, excluded, asked, mode, seed }) => {
            const origins = fakeHosts(priorities.length);
            const bare = (h: number) => origins[h]!.slice('http://'.length);
            const pairs: [string, number][] = [];
            // Hosts given as "host:port" or as an origin, some pairs twice: the same placement,
            // each host named by the first form it was given in.
            const firstForm = new Map<number, string>();
            const add = (h: number, form: string, key: number) => {
              pairs.push([form, key]);
              if (!firstForm.has(h)) firstForm.set(h, form);
            };
            placement.forEach((replicas, key) =>
              replicas.forEach((h, i) => {
                add(h, i % 2 === 0 ? origins[h]! : bare(h), key);
                if (i === 0) add(h, (key & 1) === 0 ? origins[h]! : bare(h), key);
              }),
            );
            const hosts = origins.map((origin, h) => firstForm.get(h) ?? origin);
            const table = new Map(hosts.map((host, i) => [host, priorities[i] ?? null]));
            let state = seed >>> 0;
            const shards = new Shards<number>(pairs, {
              health: false,
              cover: mode,
              priority: host => table.get(host) ?? null,
              random: () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 4294967296,
            });
            made.push(shards);
            placement.forEach((replicas, key) =>
              expect(shards.hostsFor(key)).toEqual(replicas.map(h => hosts[h])),
            );
            const keys = asked.map(k => k % placement.length);
            // Excluded hosts in either form.
            const exclude = new Set(excluded.map((h, i) => (i % 2 === 0 ? origins[h]! : bare(h))));
            const excludedHosts = new Set(excluded.map(h => hosts[h]!));
            const live = (host: string) => !excludedHosts.has(host) && table.get(host) !== null;
            const coverable = keys.every(key => shards.hostsFor(key).some(live));
            if (!coverable) {
              expect(() => shards.cover(keys, exclude)).toThrow(
                expect.objectContaining({ code: 'NO_HOST' }),
              );
              return;
            }
            const cover = shards.cover(keys, exclude);
            expect(new Set(cover.hosts).size).toBe(cover.hosts.length);
            for (const host of cover.hosts) {
              expect(hosts).toContain(host);
              expect(live(host)).toBe(true);
            }
            expect([...cover.assignment.keys()]).toEqual([...new Set(keys)]);
            for (const [key, host] of cover.assignment) {
              expect(shards.hostsFor(key)).toContain(host);
              expect(cover.hosts).toContain(host);
            }
            // No redundant host: each one is the only host in the cover for some key.
            for (const host of cover.hosts)
              expect(
                keys.some(
                  key =>
                    shards.hostsFor(key).filter(h => cover.hosts.includes(h)).length === 1 &&
                    shards.hostsFor(key).includes(host),
                ),
              ).toBe(true);
            // Small inputs: the default and 'exact' covers are minimal; greedy is within H(n).
            const eligible = [...new Set(keys.flatMap(key => shards.hostsFor(key)))].filter(live);
            if (eligible.length <= 12) {
              const [count, sum] = bruteForceCover(shards, keys, eligible, h => table.get(h)!);
              const coverSum = cover.hosts.reduce((s, h) => s + table.get(h)!, 0);
              if (mode !== 'greedy') {
                expect(cover.exact).toBe(true);
                expect([cover.hosts.length, coverSum]).toEqual([count, sum]);
              } else {
                let harmonic = 0;
                for (let i = 1; i <= new Set(keys).size; i++) harmonic += 1 / i;
                expect(cover.hosts.length).toBeGreaterThanOrEqual(count);
                expect(cover.hosts.length).toBeLessThanOrEqual(count * harmonic + 1e-9);
              }
            }
          },
        ),
        { numRuns: 200 },
      );
    } finally {
      await Promise.all(made.map(s => s.close()));
    }
  });

  it('property: a cover of every key (the placement used as it is) is valid and minimal; so is one after add/remove, with an excluded or eliminated host', async () => {
    const made: Shards<number>[] = [];
    try {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 12 }).chain(h =>
            fc.record({
              placement: fc.array(
                fc.uniqueArray(fc.integer({ min: 0, max: h - 1 }), { minLength: 1, maxLength: h }),
                { minLength: 1, maxLength: 30 },
              ),
              priorities: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: h, maxLength: h }),
              order: fc.array(fc.nat(), { maxLength: 40 }),
              off: fc.nat(),
              mode: fc.constantFrom('auto', 'greedy', 'exact'),
              seed: fc.integer(),
            }),
          ),
          ({ placement, priorities, order, off, mode, seed }) => {
            const hosts = fakeHosts(priorities.length);
            const table = new Map<string, number | null>(hosts.map((h, i) => [h, priorities[i]!]));
            let state = seed >>> 0;
            const shards = new Shards<number>(
              placement.flatMap((replicas, key) => replicas.map(h => [hosts[h]!, key] as const)),
              {
                health: false,
                cover: mode,
                priority: host => table.get(host) ?? null,
                random: () =>
                  (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 4294967296,
              },
            );
            made.push(shards);
            // Every key, shuffled, some twice.
            const keys = placement.map((_, k) => k);
            for (const at of order) keys.push(keys[at % keys.length]!);
            for (let i = keys.length - 1; i > 0; i--) {
              const j = (order[i % Math.max(1, order.length)] ?? i) % (i + 1);
              [keys[i], keys[j]] = [keys[j]!, keys[i]!];
            }
            const check = (exclude: readonly string[] = []) => {
              const live = (host: string) => !exclude.includes(host) && table.get(host) !== null;
              const all = [...shards.keys()];
              const asked = keys.filter(k => all.includes(k)).concat(all);
              if (!asked.every(key => shards.hostsFor(key).some(live))) {
                expect(() => shards.cover(asked, exclude)).toThrow(
                  expect.objectContaining({ code: 'NO_HOST' }),
                );
                return;
              }
              const cover = shards.cover(asked, exclude);
              expect([...cover.assignment.keys()]).toEqual([...new Set(asked)]);
              expect(new Set(cover.hosts).size).toBe(cover.hosts.length);
              for (const host of cover.hosts) expect(live(host)).toBe(true);
              for (const [key, host] of cover.assignment) {
                expect(shards.hostsFor(key)).toContain(host);
                expect(cover.hosts).toContain(host);
                // its cheapest replica in the cover
                for (const other of shards.hostsFor(key))
                  if (cover.hosts.includes(other))
                    expect(table.get(host)!).toBeLessThanOrEqual(table.get(other)!);
              }
              const eligible = [...new Set(asked.flatMap(key => shards.hostsFor(key)))].filter(
                live,
              );
              const [count, sum] = bruteForceCover(shards, asked, eligible, h => table.get(h)!);
              if (mode !== 'greedy') {
                expect(cover.exact).toBe(true);
                const coverSum = cover.hosts.reduce((s, h) => s + table.get(h)!, 0);
                expect([cover.hosts.length, coverSum]).toEqual([count, sum]);
              } else {
                expect(cover.hosts.length).toBeGreaterThanOrEqual(count);
              }
            };
            check();
            const victim = hosts[off % hosts.length]!;
            check([victim]);
            table.set(victim, null);
            check();
            table.set(victim, priorities[off % hosts.length]!);
            // Membership changes re-index the placement: a new host holding every key, then
            // the victim removed.
            const extra = `http://10.8.0.1:9200`;
            table.set(extra, 0);
            shards.add(extra, placement.map((_, k) => k));
            check();
            void shards.remove(victim);
            check();
          },
        ),
        { numRuns: 150 },
      );
    } finally {
      await Promise.all(made.map(s => s.close()));
    }
  });

  it('prefers the least-loaded hosts on ties, and a loaded host gives way (lupyne priority)', async () => {
    const [a, b, c] = fakeHosts(3) as [string, string, string];
    const load = new Map([
      [a, 0],
      [b, 0],
      [c, 0],
    ]);
    const shards = track(
      new Shards<number>(
        { [a]: [0, 1], [b]: [0, 1], [c]: [2] },
        { health: false, cover: 'greedy', priority: host => load.get(host)! },
      ),
    );
    load.set(a, 3);
    for (let i = 0; i < 20; i++) expect(shards.cover([0, 1, 2]).hosts.sort()).toEqual([b, c]);
    load.set(a, 0);
    load.set(b, 1);
    for (let i = 0; i < 20; i++) expect(shards.cover([0, 1]).hosts).toEqual([a]);
    // Ties are random: both equal hosts get picked over many covers.
    load.set(b, 0);
    const picked = new Set<string>();
    for (let i = 0; i < 50; i++) picked.add(shards.cover([0]).hosts[0]!);
    expect(picked).toEqual(new Set([a, b]));
  });

  it("cover: 'exact' is bounded by coverMaxNodes; a bad cover option is a TypeError", async () => {
    const hosts = fakeHosts(60);
    let state = 9;
    const random = () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 4294967296;
    const multimap: Record<string, number[]> = Object.fromEntries(hosts.map(h => [h, []]));
    for (let key = 0; key < 400; key++) {
      const set = new Set<string>();
      while (set.size < 3) set.add(hosts[Math.floor(random() * hosts.length)]!);
      for (const host of set) multimap[host]!.push(key);
    }
    const keys = Array.from({ length: 400 }, (_, k) => k);
    const greedy = track(new Shards<number>(multimap, { health: false, cover: 'greedy', random }));
    const bounded = track(
      new Shards<number>(multimap, { health: false, cover: 'exact', coverMaxNodes: 100, random }),
    );
    const auto = track(new Shards<number>(multimap, { health: false, random }));
    const g = greedy.cover(keys);
    const b = bounded.cover(keys);
    const d = auto.cover(keys);
    expect([g.exact, b.exact, d.exact]).toEqual([false, false, false]);
    for (const cover of [g, b, d])
      for (const [key, host] of cover.assignment) expect(multimap[host]).toContain(key);
    expect(() => new Shards(multimap, { cover: 'fastest' as never })).toThrow(TypeError);
  });
});
