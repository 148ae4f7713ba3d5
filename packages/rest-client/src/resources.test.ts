import {
  freePort,
  startTestServers,
  waitFor,
  type startTestServer,
  type TestServer,
} from '@x/testkit';
import { ManualClock, memoryMetrics, roundRobin, type Balancer } from '@x/resilience';
import { afterEach, describe, expect, it } from 'vitest';
import { balancers } from './balancers.js';
import { quorum } from './broadcastResult.js';
import type { BroadcastError } from './broadcastError.js';
import type { RetryBudgetDeniedError } from './errors.js';
import type { RestClientEvent } from './events.js';
import type { Upstream } from './hostStats.js';
import { Resources } from './resources.js';

const open: Array<{ close(): Promise<void> }> = [];
function track<T extends { close(): Promise<void> }>(value: T): T {
  open.push(value);
  return value;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map(x => x.close()));
});

async function servers(
  n: number,
  options?: Parameters<typeof startTestServer>[0],
): Promise<TestServer[]> {
  const list = await startTestServers(n, options);
  for (const s of list) track(s);
  return list;
}

async function deadHost(): Promise<string> {
  return `http://127.0.0.1:${await freePort()}`;
}

function collect(resources: Resources): RestClientEvent[] {
  const events: RestClientEvent[] = [];
  resources.onEvent(e => events.push(e));
  return events;
}

/** Runs `total` calls with at most `concurrency` at once. */
async function load(
  total: number,
  concurrency: number,
  call: () => Promise<unknown>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < total) await call();
    }),
  );
}

describe('Resources: balancing', () => {
  it('least-loaded (P2C) spreads concurrent load fairly over equal hosts', async () => {
    const list = await servers(3, { delayMs: 3, body: { ok: 1 } });
    const r = track(new Resources(list.map(s => s.url)));
    await load(300, 30, () => r.get('/x'));
    const counts = list.map(s => s.requestCount);
    expect(counts.reduce((a, b) => a + b)).toBe(300);
    for (const count of counts) expect(count).toBeGreaterThan(60);
  });

  it('under concurrency a slow host gets much less traffic than with round robin', async () => {
    const [slow, fast1, fast2] = await servers(3, { body: { ok: 1 } });
    // 200 ms against 2 ms: the gap stays clear of event-loop lag when the machine is busy.
    slow!.setScript({ delayMs: 200, body: { ok: 1 } });
    fast1!.setScript({ delayMs: 2, body: { ok: 1 } });
    fast2!.setScript({ delayMs: 2, body: { ok: 1 } });
    const hosts = [slow!.url, fast1!.url, fast2!.url];
    const p2c = track(new Resources(hosts));
    await load(240, 24, () => p2c.get('/x'));
    const p2cSlowShare = slow!.requestCount / 240;
    for (const s of [slow!, fast1!, fast2!]) s.resetStats();
    const rr = track(new Resources(hosts, { balancer: balancers.roundRobin() }));
    await load(240, 24, () => rr.get('/x'));
    const rrSlowShare = slow!.requestCount / 240;
    expect(rrSlowShare).toBeGreaterThan(0.3);
    // relative to round robin in the same run: a busy machine's lag makes the fast hosts look
    // slower too (0.25 measured at a load of 25, about 0.1 on an idle machine)
    expect(p2cSlowShare).toBeLessThan(rrSlowShare * 0.8);
  });

  it('balancers.lupyne() picks the host with the most idle connections, random among ties', async () => {
    const [a, b] = await servers(2, { delayMs: 20, body: { ok: 1 } });
    const r = track(new Resources([a!.url, b!.url], { balancer: balancers.lupyne() }));
    await Promise.all([1, 2, 3].map(() => r.get('/warm', undefined, { hosts: [a!.url] })));
    expect(r.hostStats(a!.url)!.idle).toBe(3);
    expect(r.hostStats(b!.url)!.idle).toBe(0);
    a!.resetStats();
    for (let i = 0; i < 5; i++) expect(r.choice()).toBe(a!.url);
    const tie = track(new Resources([a!.url, b!.url], { balancer: balancers.lupyne() }));
    const picks = new Set(Array.from({ length: 40 }, () => tie.choice()));
    expect(picks.size).toBe(2);
  });

  it("hosts configured as host:port: the priority hook gets host:port, priority() and choice() take and give that form (lupyne's Resources keys)", async () => {
    // lupyne/client.py Resources: hosts are "host[:port] strings"; priority(host) and choice(hosts)
    // use them as given, so `host == 'localhost:8080'` checks work
    const [a, b] = await servers(2);
    const aHost = a!.url.replace('http://', '');
    const bHost = b!.url.replace('http://', '');
    const seen = new Set<string>();
    const r = track(
      new Resources([aHost, bHost], {
        priority: host => (seen.add(host), host === aHost ? null : 0),
      }),
    );
    expect(r.priority(aHost)).toBeNull();
    expect(r.priority(bHost)).toBe(0);
    expect(r.priority(b!.url)).toBe(0); // the origin form is accepted too
    for (let i = 0; i < 5; i++) expect(r.choice()).toBe(bHost);
    expect(r.choice([a!.url, b!.url])).toBe(bHost);
    for (let i = 0; i < 5; i++) await r.get('/x');
    expect(a!.requestCount).toBe(0);
    expect(b!.requestCount).toBe(5);
    expect([...seen].sort()).toEqual([aHost, bHost].sort());
  });

  it('a subclass overriding choice() steers unicast and the verbs (lupyne: unicast = self.choice(hosts))', async () => {
    const [a, b, c] = await servers(3);
    const asked: string[][] = [];
    class Pinned extends Resources {
      override choice(hosts?: Iterable<string>): string {
        const list = [...(hosts ?? this.hosts)];
        asked.push(list);
        const pick = list.find(h => h === b!.url) ?? list.find(h => h === c!.url);
        if (pick === undefined) return super.choice(list);
        return pick;
      }
    }
    const r = track(new Pinned([a!.url, b!.url, c!.url]));
    for (let i = 0; i < 4; i++) await r.get('/x');
    await r.unicast('GET', '/y', { hosts: [a!.url, c!.url] });
    expect(a!.requestCount).toBe(0);
    expect(b!.requestCount).toBe(4);
    expect(c!.requestCount).toBe(1);
    expect(asked.at(-1)).toEqual([a!.url, c!.url]);
    // a retry asks choice() again among the hosts not tried yet
    await b!.close();
    expect(await r.get('/z')).toBeDefined();
    expect(c!.requestCount).toBe(2);
  });

  it('priority() is overridable: lowest tier wins, null eliminates, none left is NO_HOST', async () => {
    const [a, b, c] = await servers(3);
    class Preferring extends Resources {
      override priority(host: string): number | null {
        if (host === c!.url) return null;
        return host === a!.url ? 0 : 1;
      }
    }
    const r = track(new Preferring([a!.url, b!.url, c!.url]));
    for (let i = 0; i < 5; i++) expect(r.choice()).toBe(a!.url);
    expect(r.choice([b!.url, c!.url])).toBe(b!.url);
    expect(() => r.choice([c!.url])).toThrow(expect.objectContaining({ code: 'NO_HOST' }));
    await expect(r.unicast('GET', '/x', { hosts: [c!.url] })).rejects.toMatchObject({
      code: 'NO_HOST',
    });
    const none = track(new Resources([a!.url], { priority: () => null }));
    await expect(none.get('/x')).rejects.toMatchObject({ code: 'NO_HOST' });
    const empty = track(new Resources([]));
    expect(() => empty.choice()).toThrow(expect.objectContaining({ code: 'NO_HOST' }));
    await expect(empty.get('/x')).rejects.toMatchObject({ code: 'NO_HOST' });
    expect(c!.requestCount).toBe(0);
  });
});

describe('Resources: retries', () => {
  it('a failed idempotent request is retried at once on a different host', async () => {
    const [bad, good] = await servers(2);
    bad!.setScript({ status: 503, body: { down: true } });
    const r = track(
      new Resources([bad!.url, good!.url], { priority: host => (host === bad!.url ? 0 : 1) }),
    );
    const events = collect(r);
    const response = await r.unicast('GET', '/x');
    expect(response.status).toBe(200);
    expect(response.host).toBe(good!.url);
    expect(response.attempts).toBe(2);
    expect(bad!.requestCount).toBe(1);
    expect(good!.requestCount).toBe(1);
    expect(events.filter(e => e.type === 'retry')).toEqual([
      expect.objectContaining({ host: bad!.url, to: good!.url, delayMs: 0, attempt: 1 }),
    ]);
    expect(r.hostStats(bad!.url)!.retries).toBe(1);
  });

  it('a dead host is skipped by retries: every GET succeeds', async () => {
    const [good] = await servers(1);
    const dead = await deadHost();
    const r = track(new Resources([dead, good!.url], { health: false }));
    const results = await Promise.all(Array.from({ length: 20 }, () => r.get('/x')));
    expect(results).toHaveLength(20);
    expect(good!.requestCount).toBe(20);
  });

  it('a POST without an idempotency key is not retried on another host', async () => {
    const [bad, good] = await servers(2);
    bad!.setScript({ status: 503 });
    const r = track(
      new Resources([bad!.url, good!.url], { priority: host => (host === bad!.url ? 0 : 1) }),
    );
    const response = await r.unicast('POST', '/orders', { json: { n: 1 } });
    expect(response.status).toBe(503);
    await expect(r.post('/orders', { n: 1 })).rejects.toMatchObject({
      code: 'HTTP_ERROR',
      status: 503,
      idempotent: false,
    });
    bad!.setScript({ reset: true });
    await expect(r.post('/orders', { n: 1 })).rejects.toMatchObject({
      code: 'SOCKET',
      idempotent: false,
    });
    expect(bad!.requestCount).toBe(3);
    expect(good!.requestCount).toBe(0);
  });

  it('with an idempotency key the POST is retried on another host with the same key', async () => {
    const [bad, good] = await servers(2);
    bad!.setScript({ status: 503 });
    const r = track(
      new Resources([bad!.url, good!.url], { priority: host => (host === bad!.url ? 0 : 1) }),
    );
    await expect(r.post('/orders', { n: 1 }, { idempotencyKey: true })).resolves.toMatchObject({
      ok: true,
    });
    const key = bad!.requests[0]!.headers['idempotency-key'];
    expect(key).toMatch(/^[0-9a-f-]{36}$/);
    expect(good!.requests[0]!.headers['idempotency-key']).toBe(key);
  });

  it('retries stop at the retry budget with RETRY_BUDGET_EXHAUSTED (cause: the last failure)', async () => {
    const [good] = await servers(1);
    const dead = await deadHost();
    const r = track(
      new Resources([dead, good!.url], {
        priority: host => (host === dead ? 0 : 1),
        retry: { budget: { percentCanRetry: 0, minRetriesPerSec: 0 } },
      }),
    );
    const error = (await r.get('/x').catch(e => e)) as RetryBudgetDeniedError;
    expect(error.code).toBe('RETRY_BUDGET_EXHAUSTED');
    expect(error.cause).toMatchObject({ code: 'CONNECT', host: dead });
    expect(good!.requestCount).toBe(0);
  });

  it('many calls sleeping in a retry backoff at once raise no MaxListenersExceededWarning', async () => {
    const [a] = await servers(1, { status: 503 });
    const clock = new ManualClock();
    const r = track(new Resources([a!.url], { clock, retry: { maxRetries: 1, budget: false } }));
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const calls = Array.from({ length: 20 }, () => r.unicast('GET', '/x'));
      await waitFor(() => a!.requestCount === 20);
      await new Promise(resolve => setTimeout(resolve, 30)); // all 20 now sleep on the manual clock
      await clock.advance(1_000);
      expect((await Promise.all(calls)).map(res => res.attempts)).toEqual(Array(20).fill(2));
      await new Promise(resolve => setImmediate(resolve)); // warnings are emitted on next tick
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.map(w => w.name)).not.toContain('MaxListenersExceededWarning');
  });

  it('when every host was tried, the retry waits for the backoff (on the injected clock)', async () => {
    const [a, b] = await servers(2, { status: 503 });
    const clock = new ManualClock();
    const r = track(new Resources([a!.url, b!.url], { clock, retry: { maxRetries: 2 } }));
    const pending = r.unicast('GET', '/x');
    await waitFor(() => a!.requestCount + b!.requestCount === 2);
    await new Promise(resolve => setTimeout(resolve, 30));
    expect(a!.requestCount + b!.requestCount).toBe(2);
    await clock.advance(1_000);
    const response = await pending;
    expect(response.status).toBe(503);
    expect(response.attempts).toBe(3);
  });
});

describe('Resources: passive health', () => {
  it('consecutive 5xx eject a host (event), traffic avoids it, and the first request after the ejection readmits it', async () => {
    const [bad, good1, good2] = await servers(3);
    bad!.setScript({ status: 500 });
    const clock = new ManualClock();
    // Round robin keeps sending to the failing host (least-loaded would shun it after one failure).
    const r = track(
      new Resources([bad!.url, good1!.url, good2!.url], {
        clock,
        balancer: balancers.roundRobin(),
        retry: false,
        health: { consecutiveFailures: 3, baseEjectionMs: 1_000 },
      }),
    );
    const events = collect(r);
    await load(60, 3, () => r.unicast('GET', '/x'));
    const eject = events.find(e => e.type === 'eject');
    expect(eject).toMatchObject({
      host: bad!.url,
      consecutiveFailures: 3,
      ejectionMs: 1_000,
      ejections: 1,
    });
    expect(r.hostStats(bad!.url)).toMatchObject({
      state: 'ejected',
      ejected: true,
      ejectedUntil: 1_000,
    });
    expect(r.priority(bad!.url)).toBeNull();
    const before = bad!.requestCount;
    await load(30, 3, () => r.unicast('GET', '/x'));
    expect(bad!.requestCount).toBe(before);
    bad!.setScript({ body: { healed: true } });
    await clock.advance(1_000);
    await load(30, 1, () => r.unicast('GET', '/x'));
    expect(bad!.requestCount).toBeGreaterThan(before);
    expect(events.find(e => e.type === 'readmit')).toMatchObject({
      host: bad!.url,
      via: 'request',
      ejectedMs: 1_000,
    });
    expect(r.hostStats(bad!.url)!.state).toBe('healthy');
  });

  it('an active probe readmits a healed host; a failed probe ejects it for twice as long', async () => {
    const [bad, good] = await servers(2);
    const dead = bad!.url;
    bad!.setScript({ status: 503 });
    const clock = new ManualClock();
    const r = track(
      new Resources([dead, good!.url], {
        clock,
        balancer: balancers.roundRobin(),
        retry: false,
        health: { consecutiveFailures: 2, baseEjectionMs: 500, probe: { path: '/health' } },
      }),
    );
    const events = collect(r);
    await load(20, 1, () => r.unicast('GET', '/x'));
    expect(events.filter(e => e.type === 'eject')).toHaveLength(1);
    await clock.advance(500);
    await waitFor(() => events.some(e => e.type === 'probeFailed'));
    expect(bad!.requests.at(-1)!.path).toBe('/health');
    expect(events.filter(e => e.type === 'eject').at(-1)).toMatchObject({
      ejectionMs: 1_000,
      ejections: 2,
    });
    bad!.setScript({ body: { up: true } });
    await clock.advance(999);
    expect(events.some(e => e.type === 'readmit')).toBe(false);
    await clock.advance(1);
    await waitFor(() => events.some(e => e.type === 'readmit'));
    expect(events.find(e => e.type === 'readmit')).toMatchObject({ host: dead, via: 'probe' });
  });

  it('maxEjectedPercent keeps enough hosts: with every host failing only one of three is ejected', async () => {
    const list = await servers(3, { status: 500 });
    const r = track(
      new Resources(
        list.map(s => s.url),
        { retry: false, health: { consecutiveFailures: 2, maxEjectedPercent: 50 } },
      ),
    );
    const events = collect(r);
    await load(60, 3, () => r.unicast('GET', '/x'));
    expect(events.filter(e => e.type === 'eject')).toHaveLength(1);
    expect([...r.stats().values()].filter(s => s.ejected)).toHaveLength(1);
  });

  it('a connection-refused host is ejected and GETs keep succeeding elsewhere', async () => {
    const [good1, good2] = await servers(2);
    const dead = await deadHost();
    const r = track(
      new Resources([dead, good1!.url, good2!.url], {
        balancer: balancers.roundRobin(),
        health: { consecutiveFailures: 2 },
      }),
    );
    const events = collect(r);
    await load(50, 5, () => r.get('/x'));
    expect(events.find(e => e.type === 'eject')).toMatchObject({
      host: dead,
      error: { code: 'CONNECT' },
    });
    expect(good1!.requestCount + good2!.requestCount).toBe(50);
  });
});

describe('Resources: broadcast', () => {
  async function cluster(deadFirst = true) {
    const list = await servers(2, { body: { ok: 1 } });
    const dead = await deadHost();
    const hosts = deadFirst ? [dead, ...list.map(s => s.url)] : [...list.map(s => s.url), dead];
    return { list, dead, r: track(new Resources(hosts, { health: false })) };
  }

  it("'settled' resolves with every response and the dead host's failure", async () => {
    const { r, dead, list } = await cluster();
    const result = await r.broadcast('GET', '/b', { mode: 'settled' });
    expect(result.satisfied).toBe(true);
    expect(result.complete).toBe(false);
    expect([...result.responses.keys()].sort()).toEqual(list.map(s => s.url).sort());
    expect(result.failures.get(dead)).toMatchObject({ code: 'CONNECT', host: dead });
    expect(result.hosts).toHaveLength(3);
  });

  it("'all' rejects with BROADCAST carrying the responses that arrived and the failure", async () => {
    const list = await servers(3, { body: { ok: 1 } });
    list[2]!.setScript({ delayMs: 80, reset: true });
    const r = track(
      new Resources(
        list.map(s => s.url),
        { health: false },
      ),
    );
    const error = (await r.broadcast('GET', '/b').catch(e => e)) as BroadcastError;
    expect(error.code).toBe('BROADCAST');
    expect(error.result.satisfied).toBe(false);
    expect(error.result.responses.size).toBe(2);
    expect(error.result.failures.get(list[2]!.url)).toMatchObject({ code: 'SOCKET' });
    expect(error.errors).toHaveLength(1);
    const ok = await r.broadcast('GET', '/b', { hosts: [list[0]!.url, list[1]!.url] });
    expect(ok.complete).toBe(true);
    expect([...ok.responses.values()].every(x => x.ok)).toBe(true);
  });

  it("'all' is decided by the first failure: slow hosts are cancelled at once", async () => {
    const list = await servers(2, { delayMs: 2_000, body: { late: true } });
    const dead = await deadHost();
    const r = track(new Resources([...list.map(s => s.url), dead], { health: false }));
    const started = performance.now();
    const error = (await r.broadcast('GET', '/b').catch(e => e)) as BroadcastError;
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(error.result.failures.get(dead)).toMatchObject({ code: 'CONNECT' });
    for (const s of list)
      expect(error.result.failures.get(s.url)).toMatchObject({ code: 'ABORTED' });
    await waitFor(() => list.every(s => s.inFlight === 0));
    expect([...r.stats().values()].every(x => x.inFlight === 0)).toBe(true);
  });

  it('quorum(k) resolves with k ok responses and fails when k cannot be reached', async () => {
    const { r } = await cluster(false);
    const two = await r.broadcast('GET', '/q', { mode: quorum(2) });
    expect(two.satisfied).toBe(true);
    expect([...two.responses.values()].filter(x => x.ok)).toHaveLength(2);
    await expect(r.broadcast('GET', '/q', { mode: quorum(3) })).rejects.toMatchObject({
      code: 'BROADCAST',
    });
    await expect(r.broadcast('GET', '/q', { mode: { quorum: 4 } })).rejects.toMatchObject({
      code: 'INVALID_REQUEST',
    });
    await expect(r.broadcast('GET', '/q', { mode: 'most' as never })).rejects.toMatchObject({
      code: 'INVALID_REQUEST',
    });
    expect(() => quorum(0)).toThrow(expect.objectContaining({ code: 'INVALID_REQUEST' }));
  });

  it("'first' resolves with the first ok response and cancels the others", async () => {
    const [fast, slow] = await servers(2, { body: { ok: 1 } });
    slow!.setScript({ delayMs: 2_000, body: { slow: 1 } });
    const dead = await deadHost();
    const r = track(new Resources([dead, slow!.url, fast!.url], { health: false }));
    const started = performance.now();
    const result = await r.broadcast('GET', '/f', { mode: 'first' });
    expect(performance.now() - started).toBeLessThan(1_000);
    expect([...result.responses.keys()]).toEqual([fast!.url]);
    expect(result.failures.get(slow!.url)).toMatchObject({ code: 'ABORTED' });
    expect(result.failures.get(dead)).toMatchObject({ code: 'CONNECT' });
  });

  it('non-2xx responses are results, not failures (lupyne); the caller signal aborts a broadcast', async () => {
    const [a, b] = await servers(2);
    a!.setScript({ status: 404, body: { missing: 1 } });
    const r = track(new Resources([a!.url, b!.url]));
    const result = await r.broadcast('GET', '/x');
    expect(result.responses.get(a!.url)!.ok).toBe(false);
    expect(result.responses.get(a!.url)!.body).toEqual({ missing: 1 });
    b!.setScript({ delayMs: 2_000 });
    await expect(
      r.broadcast('GET', '/x', { mode: 'settled', signal: AbortSignal.timeout(50) }),
    ).rejects.toMatchObject({ code: 'TIMEOUT' });
  });
});

describe('Resources: limits, low-level API, membership, stats and hedging', () => {
  it('maxConnectionsTotal caps requests on the wire across hosts; maxPending bounds the wait', async () => {
    const list = await servers(2, { delayMs: 40, body: { ok: 1 } });
    const r = track(
      new Resources(
        list.map(s => s.url),
        { maxConnectionsTotal: 2, maxPending: 3 },
      ),
    );
    let inFlight = 0;
    let peak = 0;
    const probe = setInterval(() => {
      inFlight = list[0]!.inFlight + list[1]!.inFlight;
      peak = Math.max(peak, inFlight);
    }, 2);
    const results = await Promise.all(
      Array.from({ length: 8 }, () =>
        r.get('/x').then(
          () => 'ok',
          (e: { code: string }) => e.code,
        ),
      ),
    );
    clearInterval(probe);
    expect(results.filter(x => x === 'ok')).toHaveLength(5);
    expect(results.filter(x => x === 'QUEUE_FULL')).toHaveLength(3);
    expect(peak).toBeLessThanOrEqual(2);
    // each host's own peak is within the total cap (the two peaks may come at different times,
    // so their sum may reach 4 without the cap ever being exceeded)
    expect(Math.max(list[0]!.maxInFlight, list[1]!.maxInFlight)).toBeLessThanOrEqual(2);
  });

  it('request/getresponse send to a given host (lupyne low level)', async () => {
    const [a, b] = await servers(2);
    const r = track(new Resources([a!.url, b!.url]));
    const pending = [r.request(a!.url, 'GET', '/one'), r.request(b!.url, 'GET', '/two')];
    const responses = await Promise.all(pending.map(p => r.getresponse(p)));
    expect(responses.map(x => x.host)).toEqual([a!.url, b!.url]);
    expect(a!.requests[0]!.path).toBe('/one');
    await expect(r.getresponse(r.request('http://unknown:1', 'GET', '/'))).rejects.toMatchObject({
      code: 'INVALID_REQUEST',
    });
  });

  it('add and remove hosts; stats are per host', async () => {
    const [a, b] = await servers(2);
    const r = track(new Resources([a!.url]));
    await r.get('/x');
    r.add(b!.url);
    r.add(b!.url.replace('http://', ''));
    expect(r.hosts).toEqual([a!.url, b!.url]);
    await load(20, 4, () => r.get('/x'));
    expect(b!.requestCount).toBeGreaterThan(0);
    expect(r.has(b!.url.replace('http://', ''))).toBe(true);
    expect(r.size).toBe(2);
    const streamed = await r.stream(b!.url, 'GET', '/s');
    let text = '';
    for await (const chunk of streamed.body) text += String(chunk);
    expect(JSON.parse(text)).toEqual({ ok: true, path: '/s' });
    expect(await r.remove(a!.url)).toBe(true);
    expect(r.has(a!.url)).toBe(false);
    expect(await r.remove(a!.url)).toBe(false);
    const before = a!.requestCount;
    await load(10, 2, () => r.get('/x'));
    expect(a!.requestCount).toBe(before);
    const stats = r.stats();
    expect([...stats.keys()]).toEqual([b!.url]);
    expect(stats.get(b!.url)).toMatchObject({ inFlight: 0, state: 'healthy', ejected: false });
    expect(stats.get(b!.url)!.requests).toBeGreaterThan(10);
    expect(stats.get(b!.url)!.ewmaMs).toBeGreaterThan(0);
    expect(stats.get(b!.url)!.connected).toBeGreaterThan(0);
  });

  it('hedges a slow read on another host; the first answer wins', async () => {
    const [slow, fast] = await servers(2, { body: { from: 'fast' } });
    slow!.setScript({ delayMs: 2_000, body: { from: 'slow' } });
    const r = track(
      new Resources([slow!.url, fast!.url], {
        priority: host => (host === slow!.url ? 0 : 1),
        hedge: { delay: 30, maxExtraLoad: 1 },
      }),
    );
    const events = collect(r);
    const started = performance.now();
    await expect(r.get('/read')).resolves.toEqual({ from: 'fast' });
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(events.find(e => e.type === 'hedge')).toMatchObject({ host: fast!.url, attempt: 1 });
    await waitFor(() => slow!.inFlight === 0); // the loser was cancelled
    await r.post('/write', {}, { timeout: 100 }).catch(() => {});
    expect(fast!.requests.filter(q => q.method === 'POST')).toHaveLength(0); // writes are never hedged
  });

  it('records metrics through the @x/resilience Metrics interface', async () => {
    const [a] = await servers(1);
    const metrics = memoryMetrics();
    const r = track(new Resources([a!.url], { metrics }));
    await r.get('/x');
    const snapshot = metrics.snapshot();
    expect(JSON.stringify(snapshot)).toContain('rest_client.requests');
    expect(JSON.stringify(snapshot)).toContain('rest_client.request.duration');
  });

  it("one source of per-host load: stats() are the balancer's LoadTracker entries; an abort leaves the failure streak", async () => {
    const [good, bad] = await servers(2, { body: { ok: 1 } });
    bad!.setScript([{ status: 500 }, { delayMs: 2_000 }]);
    const inner = balancers.roundRobin();
    const seen = new Set<Upstream>();
    const balancer: Balancer<Upstream> = {
      ...inner,
      pick: (candidates, exclude) => {
        for (const c of candidates) seen.add(c);
        return inner.pick(candidates, exclude);
      },
    };
    expect(balancer.tracker).toBe(inner.tracker);
    const r = track(new Resources([good!.url, bad!.url], { balancer, retry: false }));
    await r.get('/x'); // good
    await expect(r.get('/x')).rejects.toMatchObject({ code: 'HTTP_ERROR' }); // bad: 500
    await r.get('/x'); // good (round robin)
    const controller = new AbortController();
    const aborted = r.get('/x', undefined, { signal: controller.signal }); // bad, slow
    await waitFor(() => bad!.inFlight === 1);
    expect(r.stats().get(bad!.url)!.inFlight).toBe(1);
    controller.abort();
    await expect(aborted).rejects.toMatchObject({ code: 'ABORTED' });
    const stats = r.stats();
    expect(stats.get(bad!.url)).toMatchObject({
      inFlight: 0,
      requests: 2,
      failures: 1,
      consecutiveFailures: 1, // the abort said nothing about the host: the streak stays
    });
    expect(stats.get(good!.url)).toMatchObject({ requests: 2, failures: 0 });
    expect(seen.size).toBe(2);
    for (const host of seen) {
      const load = inner.load(host);
      const s = stats.get(host.origin)!;
      expect(load).toMatchObject({
        inFlight: s.inFlight,
        requests: s.requests,
        failures: s.failures,
        consecutiveFailures: s.consecutiveFailures,
        ewmaMs: s.ewmaMs,
      });
    }
  });

  it('a custom balancer without a LoadTracker still gets stats (and every start and end)', async () => {
    const list = await servers(2, { body: { ok: 1 } });
    const ends: boolean[] = [];
    let started = 0;
    const balancer: Balancer<Upstream> = {
      name: 'first',
      pick: candidates => candidates[0],
      start: () => {
        started++;
      },
      end: (_, outcome) => {
        ends.push(outcome.ok);
      },
      load: () => ({
        inFlight: 0,
        requests: 0,
        failures: 0,
        consecutiveFailures: 0,
        ewmaMs: 0,
        lastUpdate: 0,
      }),
      forget: () => {},
    };
    const r = track(
      new Resources(
        list.map(s => s.url),
        { balancer },
      ),
    );
    for (let i = 0; i < 3; i++) await r.get('/x');
    expect(started).toBe(3);
    expect(ends).toEqual([true, true, true]);
    expect(r.stats().get(list[0]!.url)).toMatchObject({ requests: 3, inFlight: 0, failures: 0 });
    expect(r.stats().get(list[0]!.url)!.ewmaMs).toBeGreaterThan(0);
  });

  it('accepts any @x/resilience balancer', async () => {
    const list = await servers(3);
    const r = track(
      new Resources(
        list.map(s => s.url),
        { balancer: roundRobin() },
      ),
    );
    for (let i = 0; i < 6; i++) await r.get('/x');
    expect(list.map(s => s.requestCount)).toEqual([2, 2, 2]);
  });
});
