import { freePort, startTestServers, waitFor } from '@x/testkit';
import { ManualClock } from '@x/resilience';
import { afterEach, describe, expect, it } from 'vitest';
import type { RestClientEvent } from './events.js';
import { Replicas } from './replicas.js';

const open: Array<{ close(): Promise<void> }> = [];
function track<T extends { close(): Promise<void> }>(value: T): T {
  open.push(value);
  return value;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map(x => x.close()));
});

describe('Replicas', () => {
  it('writes go to the primary, reads are balanced', async () => {
    const servers = await startTestServers(3);
    for (const s of servers) track(s);
    const r = track(new Replicas(servers.map(s => s.url)));
    expect(r.primary).toBe(servers[0]!.url);
    for (let i = 0; i < 5; i++) await r.post('/docs', { i });
    expect(servers[0]!.requestCount).toBe(5);
    await Promise.all(Array.from({ length: 30 }, () => r.get('/docs')));
    expect(servers[1]!.requestCount + servers[2]!.requestCount).toBeGreaterThan(0);
  });

  it('a dead primary fails over in order and is readmitted after a probe (lupyne never readmitted)', async () => {
    const servers = await startTestServers(2);
    for (const s of servers) track(s);
    const port = await freePort();
    const dead = `http://127.0.0.1:${port}`;
    const clock = new ManualClock();
    const r = track(
      new Replicas([dead, ...servers.map(s => s.url)], {
        clock,
        health: { baseEjectionMs: 1_000, probe: { path: '/health' } },
      }),
    );
    const events: RestClientEvent[] = [];
    r.onEvent(e => events.push(e));
    // Connection refused: nothing was sent, so even a POST fails over to the next host in order.
    await expect(r.post('/docs', { a: 1 })).resolves.toEqual({ ok: true, path: '/docs' });
    expect(servers[0]!.requestCount).toBe(1);
    expect(events.find(e => e.type === 'eject')).toMatchObject({ host: dead });
    expect(r.primary).toBe(servers[0]!.url);
    await r.post('/docs', { a: 2 });
    expect(servers[0]!.requestCount).toBe(2);
    // Reads never go to the ejected host.
    await Promise.all(Array.from({ length: 10 }, () => r.get('/read')));
    // The probe fails while the host is down, then readmits it once it listens.
    await clock.advance(1_000);
    await waitFor(() => events.some(e => e.type === 'probeFailed'));
    const { createServer } = await import('node:http');
    const revived = createServer((_req, res) => res.end('{}'));
    await new Promise<void>(resolve => revived.listen(port, '127.0.0.1', resolve));
    try {
      await clock.advance(2_000);
      await waitFor(() => events.some(e => e.type === 'readmit'));
      expect(r.primary).toBe(dead);
    } finally {
      revived.closeAllConnections();
      await new Promise(resolve => revived.close(resolve));
    }
  });

  it('a write that may have reached the primary is not resent to another host', async () => {
    const servers = await startTestServers(2);
    for (const s of servers) track(s);
    servers[0]!.setScript({ reset: true });
    const r = track(new Replicas(servers.map(s => s.url)));
    await expect(r.post('/docs', {})).rejects.toMatchObject({ code: 'SOCKET' });
    expect(servers[1]!.requestCount).toBe(0);
    // ...but the primary is marked failed: the next write goes to the next host.
    expect(r.primary).toBe(servers[1]!.url);
    await r.post('/docs', {});
    expect(servers[1]!.requestCount).toBe(1);
  });
});
