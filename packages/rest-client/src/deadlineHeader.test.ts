import { startTestServer, startTestServers } from '@x/testkit';
import { DEADLINE_HEADER } from '@x/resilience';
import { afterEach, describe, expect, it } from 'vitest';
import { Resource } from './resource.js';
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

const seen = (headers: Record<string, unknown>) => Number(headers[DEADLINE_HEADER]);

describe('the remaining deadline travels in x-request-timeout-ms', () => {
  it('Resource sends the call timeout left, and the per-try one when earlier', async () => {
    const s = track(await startTestServer());
    const r = track(new Resource(s.url, { timeout: 2_000 }));
    await r.get('/a');
    await r.get('/b', undefined, { timeout: 300 });
    await r.get('/c', undefined, { timeout: { total: 5_000, perTry: 150 } });
    expect(seen(s.requests[0]!.headers)).toBeGreaterThan(1_500);
    expect(seen(s.requests[0]!.headers)).toBeLessThanOrEqual(2_000);
    expect(seen(s.requests[1]!.headers)).toBeLessThanOrEqual(300);
    expect(seen(s.requests[1]!.headers)).toBeGreaterThan(0);
    expect(seen(s.requests[2]!.headers)).toBeLessThanOrEqual(150);
  });

  it('a retry sends what is left after the first try, not the whole budget again', async () => {
    const s = track(
      await startTestServer({ script: [{ status: 503, delayMs: 200 }, { status: 200 }] }),
    );
    const r = track(new Resource(s.url, { timeout: 1_000, retry: { maxRetries: 1 } }));
    await r.get('/a');
    expect(s.requests).toHaveLength(2);
    expect(seen(s.requests[1]!.headers)).toBeLessThanOrEqual(1_000 - 200 + 5);
  });

  it('sendDeadline: false sends nothing, and no limit sends nothing', async () => {
    const s = track(await startTestServer());
    const off = track(new Resource(s.url, { sendDeadline: false }));
    await off.get('/a');
    const unlimited = track(new Resource(s.url, { timeout: Infinity }));
    await unlimited.get('/b');
    expect(s.requests[0]!.headers[DEADLINE_HEADER]).toBeUndefined();
    expect(s.requests[1]!.headers[DEADLINE_HEADER]).toBeUndefined();
    expect(() => new Resource(s.url, { sendDeadline: 'no' as never })).toThrow(TypeError);
  });

  it('never waits past the deadline of a slow server', async () => {
    const s = track(await startTestServer({ script: { delayMs: 5_000 } }));
    const r = track(new Resource(s.url, { retry: false }));
    const started = Date.now();
    await expect(r.get('/slow', undefined, { timeout: 300 })).rejects.toMatchObject({
      code: 'TIMEOUT',
    });
    expect(Date.now() - started).toBeLessThan(300 + 1_500);
  });

  it('Resources.broadcast and Shards.multicast send it to every host', async () => {
    const servers = await startTestServers(2);
    for (const s of servers) track(s);
    const urls = servers.map(s => s.url);
    const rs = track(new Resources(urls, { health: false }));
    await rs.broadcast('GET', '/x', { timeout: 400 });
    const shards = track(
      new Shards<number>({ [urls[0]!]: [0], [urls[1]!]: [1] }, { health: false }),
    );
    await shards.multicast([0, 1], 'GET', '/y', { timeout: 250 });
    for (const s of servers) {
      expect(seen(s.requests[0]!.headers)).toBeLessThanOrEqual(400);
      expect(seen(s.requests[1]!.headers)).toBeLessThanOrEqual(250);
      expect(seen(s.requests[1]!.headers)).toBeGreaterThan(0);
    }
  });
});
