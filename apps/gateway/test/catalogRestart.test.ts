import { waitFor } from '@x/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { json, removeConfigs, startGateway, testConfig, type RunningGateway } from './helpers.js';

afterAll(removeConfigs);

/**
 * A catalog instance that restarts on a new port is moved in the search client
 * (`Shards.replace`), not rebuilt: the host keeps its counters and its place.
 */
describe('a restarted catalog instance', () => {
  let gw: RunningGateway;

  beforeAll(async () => {
    const config = testConfig();
    config.modules.catalog.versions.v1.restart = {
      initialDelayMs: 300,
      maxDelayMs: 300,
      maxRestarts: 5,
    };
    gw = await startGateway(config);
  });

  afterAll(async () => {
    await gw?.process.kill('SIGKILL');
  });

  const hostOf = async (instance: string) =>
    (await gw.state()).catalog.hosts.find(h => h.instance === instance)!;
  const searchAll = async (times: number) => {
    for (let i = 0; i < times; i++) {
      const { status, body } = await json(`${gw.url}api/search?q=a&limit=100`);
      expect(status, JSON.stringify(body)).toBe(200);
      expect(body.partial).toBe(false);
    }
  };

  it('is moved to its new port in the same client: its request count goes on, search stays complete', async () => {
    await searchAll(10);
    const before = await hostOf('0');
    expect(before.requests).toBeGreaterThan(0);
    const catalog = (await gw.state()).modules.find(m => m.name === 'catalog')!;
    const zero = catalog.versions[0]!.instances.find(i => i.id === '0')!;
    process.kill(zero.pid!, 'SIGKILL');
    const moved = await waitFor(
      async () => {
        const host = await hostOf('0');
        const state = (await gw.state()).modules
          .find(m => m.name === 'catalog')!
          .versions[0]!.instances.find(i => i.id === '0')!;
        return host.origin !== before.origin && state.state === 'ready' ? host : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 100 },
    );
    // the same host object: not a fresh client whose counters start at 0
    expect(moved.requests).toBeGreaterThanOrEqual(before.requests);
    expect(moved.shards).toEqual(before.shards);
    const counted = moved.requests;
    await searchAll(10);
    const after = await hostOf('0');
    expect(after.origin).toBe(moved.origin);
    expect(after.requests).toBeGreaterThan(counted);
    expect((await gw.state()).catalog.hosts).toHaveLength(3);
  });
});
