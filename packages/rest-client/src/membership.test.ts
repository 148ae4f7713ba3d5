import { freePort, startTestServer, startTestServers, type TestServer } from '@x/testkit';
import { leastLoaded, type Balancer } from '@x/resilience';
import { afterEach, describe, expect, it } from 'vitest';
import type { Upstream } from './hostStats.js';
import { Resources } from './resources.js';
import { Shards } from './shards.js';

const open: Array<{ close(): Promise<void> }> = [];
function track<T extends { close(): Promise<void> }>(value: T): T {
  open.push(value);
  return value;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map(x => x.close()));
});

async function server(): Promise<TestServer> {
  return track(await startTestServer({ script: req => ({ body: { path: req.path } }) }));
}

/** A least-loaded balancer that records every endpoint object it is handed. */
function recording(): { balancer: Balancer<Upstream>; seen: Set<Upstream> } {
  const inner = leastLoaded<Upstream>();
  const seen = new Set<Upstream>();
  return {
    seen,
    balancer: {
      name: 'recording',
      pick: (candidates, exclude) => inner.pick(candidates, exclude),
      start: endpoint => {
        seen.add(endpoint);
        inner.start(endpoint);
      },
      end: (endpoint, outcome) => inner.end(endpoint, outcome),
      load: endpoint => inner.load(endpoint),
      forget: endpoint => inner.forget(endpoint),
    },
  };
}

/** Calls `call` with `concurrency` loops until `stop()`; returns the failures seen. */
function traffic(concurrency: number, call: () => Promise<unknown>) {
  let running = true;
  let done = 0;
  const failures: unknown[] = [];
  const loops = Array.from({ length: concurrency }, async () => {
    while (running) {
      try {
        await call();
        done++;
      } catch (error) {
        failures.push(error);
        await new Promise(resolve => setImmediate(resolve)); // a fast failure must not starve timers
      }
    }
  });
  return {
    get done() {
      return done;
    },
    failures,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise(resolve => setTimeout(resolve, 5));
  }
}

describe('Resources: membership at run time', () => {
  it('replace(): a host restarted on a new port keeps its state; no failures mid-traffic', async () => {
    const [a, b] = await startTestServers(2, { script: req => ({ body: { path: req.path } }) });
    track(a!);
    track(b!);
    const { balancer, seen } = recording();
    const r = track(
      new Resources([a!.url, b!.url], { balancer, retry: { maxRetries: 3, budget: false } }),
    );
    const run = traffic(4, () => r.get('/x'));
    await until(() => a!.requestCount >= 20 && b!.requestCount >= 20);
    const endpointsBefore = new Set(seen);
    expect(endpointsBefore.size).toBe(2);
    // The instance restarts on a new port: the new one is up, the old one goes away.
    const a2 = await server();
    await a!.close();
    const before = r.hostStats(a!.url)!;
    const closed = r.replace(a!.url, a2.url);
    expect(r.hosts).toEqual([a2.url, b!.url]);
    expect(r.has(a!.url)).toBe(false);
    await until(() => a2.requestCount >= 20);
    await run.stop();
    await expect(closed).resolves.toBe(true);
    expect(run.failures).toEqual([]);
    const after = r.hostStats(a2.url)!;
    expect(after.host).toBe(a2.url);
    // The same host: its counters went on from where they were, the balancer saw no new endpoint.
    expect(after.requests).toBeGreaterThanOrEqual(before.requests + 20);
    expect(seen).toEqual(endpointsBefore);
    expect([...seen].map(e => e.origin).sort()).toEqual([a2.url, b!.url].sort());
  });

  it('replace() keeps the ejection history and probes the new address at once', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const good = await server();
    const r = track(
      new Resources([dead, good.url], {
        health: { consecutiveFailures: 1, baseEjectionMs: 200, maxEjectedPercent: 50 },
        retry: false,
      }),
    );
    await r.get('/x', undefined, { hosts: [dead] }).catch(() => {});
    expect(r.hostStats(dead)).toMatchObject({ state: 'ejected', ejections: 1, failures: 1 });
    const moved = await server();
    await expect(r.replace(dead, moved.url.replace('http://', ''))).resolves.toBe(true);
    // Still ejected, with its history, but the next request probes the new address at once.
    expect(r.hostStats(moved.url)).toMatchObject({ state: 'ejected', ejections: 1, failures: 1 });
    expect(r.priority(moved.url)).not.toBeNull();
    await expect(r.get('/y', undefined, { hosts: [moved.url] })).resolves.toEqual({ path: '/y' });
    expect(r.hostStats(moved.url)).toMatchObject({ state: 'healthy', failures: 1 });
    expect(moved.requestCount).toBe(1);
    expect(r.choice([moved.url])).toBe(moved.url.replace('http://', '')); // as configured
  });

  it('replace() lets requests in flight on the old address finish before closing its pool', async () => {
    const old = track(await startTestServer({ script: { delayMs: 300, body: { from: 'old' } } }));
    const next = await server();
    const r = track(new Resources([old.url]));
    const slow = r.get('/slow');
    await until(() => old.inFlight === 1);
    let closed = false;
    const replaced = r.replace(old.url, next.url).then(result => (closed = result));
    await expect(r.get('/now')).resolves.toEqual({ path: '/now' });
    expect(closed).toBe(false);
    await expect(slow).resolves.toEqual({ from: 'old' });
    await replaced;
    expect(closed).toBe(true);
    expect(r.hostStats(next.url)).toMatchObject({ requests: 2, failures: 0 });
  });

  it('replace() rejects a new address that is already another host, and unknown hosts', async () => {
    const [a, b] = [await server(), await server()];
    const r = track(new Resources([a.url, b.url]));
    await expect(r.replace(a.url, b.url)).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
    expect(r.hosts).toEqual([a.url, b.url]);
    await expect(r.replace('http://127.0.0.1:1', a.url)).resolves.toBe(false);
    await expect(r.replace(a.url, a.url)).resolves.toBe(true);
  });

  it('setHosts() adds and removes hosts, keeping the ones in both', async () => {
    const [a, b, c] = [await server(), await server(), await server()];
    const r = track(new Resources([a.url, b.url]));
    for (let i = 0; i < 10; i++) await r.get('/x');
    const bRequests = r.hostStats(b.url)!.requests;
    await r.setHosts([b.url, c.url.replace('http://', '')]);
    expect(r.hosts).toEqual([b.url, c.url]);
    expect(r.hostStats(b.url)!.requests).toBe(bRequests);
    const aBefore = a.requestCount;
    for (let i = 0; i < 10; i++) await r.get('/x');
    expect(a.requestCount).toBe(aBefore);
    expect(c.requestCount).toBeGreaterThan(0);
    await expect(r.setHosts('nope' as unknown as string[])).rejects.toThrow(TypeError);
  });
});

describe('Shards: membership at run time', () => {
  it('replace(): the host keeps its keys and state; multicast and unicast reach the new address', async () => {
    const [a, b] = await startTestServers(2, { script: req => ({ body: { path: req.path } }) });
    track(a!);
    track(b!);
    const shards = track(
      new Shards<number>({ [a!.url]: [0, 1], [b!.url]: [1, 2] }, { retry: { budget: false } }),
    );
    const run = traffic(3, () => shards.multicast([0, 1, 2], 'GET', '/m'));
    await until(() => a!.requestCount >= 10);
    const a2 = await server();
    await a!.close();
    const before = shards.resources.hostStats(a!.url)!.requests;
    const closed = shards.replace(a!.url, a2.url);
    expect(shards.hostsFor(0)).toEqual([a2.url]);
    expect(shards.hostsFor(1)).toEqual([a2.url, b!.url]);
    await until(() => a2.requestCount >= 10);
    await run.stop();
    await closed;
    expect(run.failures).toEqual([]);
    expect(shards.resources.hostStats(a2.url)!.requests).toBeGreaterThanOrEqual(before + 10);
    await expect(shards.unicast(0, 'GET', '/u')).resolves.toMatchObject({
      host: a2.url,
      status: 200,
    });
    const cover = shards.cover([0, 2]);
    expect(new Set(cover.hosts)).toEqual(new Set([a2.url, b!.url]));
    expect(cover.assignment.get(0)).toBe(a2.url);
  });

  it('add() and remove() update the placement and the covers', async () => {
    const [a, b, c] = [await server(), await server(), await server()];
    const shards = track(
      new Shards<number>([
        [a.url, 0],
        [b.url, 1],
      ]),
    );
    expect(shards.cover([0, 1]).hosts).toHaveLength(2);
    shards.add(c.url, [0, 1, 2]);
    expect([...shards.keys()]).toEqual([0, 1, 2]);
    expect(shards.hostsFor(2)).toEqual([c.url]);
    expect(shards.resources.hosts).toEqual([a.url, b.url, c.url]);
    expect(shards.cover([0, 1, 2])).toMatchObject({ hosts: [c.url], exact: true });
    const result = await shards.multicast([0, 1, 2], 'GET', '/all');
    expect([...result.responses.keys()]).toEqual([c.url]);
    shards.add(a.url, [2]); // a known host gains a key
    expect(shards.hostsFor(2)).toEqual([c.url, a.url]);
    await expect(shards.remove(c.url)).resolves.toBe(true);
    expect(shards.resources.hosts).toEqual([a.url, b.url]);
    expect(shards.hostsFor(0)).toEqual([a.url]);
    expect(shards.hostsFor(2)).toEqual([a.url]);
    expect(shards.cover([0, 2])).toMatchObject({ hosts: [a.url] });
    await expect(shards.unicast(2, 'GET', '/k2')).resolves.toMatchObject({ host: a.url });
    await expect(shards.remove(b.url)).resolves.toBe(true);
    expect([...shards.keys()]).toEqual([0, 2]); // key 1 lost its last replica
    await expect(shards.unicast(1, 'GET', '/k1')).rejects.toMatchObject({ code: 'NO_HOST' });
    expect(() => shards.cover([1])).toThrow(/no host serves key 1/);
    await expect(shards.remove(b.url)).resolves.toBe(false);
    expect(() => shards.add(a.url, [{} as unknown as number])).toThrow(/strings or numbers/);
  });

  it('replace() to an address that is already a host rejects and changes nothing', async () => {
    const [a, b] = [await server(), await server()];
    const shards = track(new Shards<string>({ [a.url]: ['x'], [b.url]: ['y'] }));
    await expect(shards.replace(a.url, b.url)).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
    expect(shards.hostsFor('x')).toEqual([a.url]);
    expect(shards.resources.hosts).toEqual([a.url, b.url]);
  });
});
