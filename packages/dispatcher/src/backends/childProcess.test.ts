import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { exponentialBackoff } from '@x/resilience';
import { startTestServer, waitFor, type TestServer } from '@x/testkit';
import { createDispatcher, type Dispatcher, type DispatcherOptions } from '../createDispatcher.js';
import type { DispatcherEvent } from '../dispatcherEvent.js';
import { responseJson } from '../responseTuple.js';
import { childProcess, type ChildProcessOptions } from './childProcess.js';
import { remote } from './remote.js';

const script = fileURLToPath(new URL('../../test/fixtures/backend.mjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'x-dispatcher-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const open: Dispatcher[] = [];
function make(options: DispatcherOptions): Dispatcher {
  const d = createDispatcher(options);
  open.push(d);
  return d;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map(d => d.close({ drainTimeoutMs: 1_000 })));
});

const backend = (env: Record<string, string> = {}, extra: Partial<ChildProcessOptions> = {}) =>
  childProcess({ args: [script], env, output: 'pipe', killTimeoutMs: 2_000, ...extra });

function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

interface Who {
  pid: number;
  port: number;
  module: string;
  version: string;
  instance: string;
  lifecycle: string[];
}

describe('child-process instances', () => {
  it('manual instances are real processes with their own pid and port, started with /_ah/start and stopped with /_ah/stop', async () => {
    const log = join(dir, 'lifecycle-1.log');
    const d = make({
      host: 'example.com',
      modules: {
        api: {
          versions: {
            v1: {
              backend: backend({ LIFECYCLE_LOG: log }),
              scaling: { kind: 'manual', instances: 2 },
            },
          },
        },
      },
    });
    await d.start();
    const instances = d.getInstances('api', 'v1');
    expect(instances.map(i => [i.id, i.state])).toEqual([
      ['0', 'ready'],
      ['1', 'ready'],
    ]);
    const pids = instances.map(i => i.pid!);
    expect(new Set(pids).size).toBe(2);
    expect(pids.every(alive)).toBe(true);
    expect(pids).not.toContain(process.pid);
    for (const info of instances) {
      const who = responseJson<Who>(
        await d.addRequest({ url: '/', headers: { host: d.getHostname('api', 'v1', info.id) } }),
      );
      expect(who).toMatchObject({
        pid: info.pid,
        port: info.port,
        module: 'api',
        version: 'v1',
        instance: info.id,
        lifecycle: ['/_ah/start'],
      });
      expect(info.origin).toBe(`http://127.0.0.1:${info.port}`);
    }

    await d.setNumInstances('api', 'v1', 3);
    const third = d.getInstances('api', 'v1')[2]!;
    expect(third).toMatchObject({ id: '2', state: 'ready' });
    expect(alive(third.pid)).toBe(true);

    await d.setNumInstances('api', 'v1', 1);
    expect(d.getInstances('api', 'v1').map(i => i.id)).toEqual(['0']);
    expect(alive(pids[1])).toBe(false);
    expect(alive(third.pid)).toBe(false);
    expect(readFileSync(log, 'utf8').split('\n').filter(Boolean).sort()).toEqual([
      '0 /_ah/start',
      '1 /_ah/start',
      '1 /_ah/stop',
      '2 /_ah/start',
      '2 /_ah/stop',
    ]);

    await d.close();
    expect(alive(pids[0])).toBe(false);
    expect(readFileSync(log, 'utf8')).toContain('0 /_ah/stop');
  });

  it('restarts an instance that dies, with backoff, in a new process', async () => {
    const d = make({
      modules: {
        api: {
          versions: {
            v1: {
              backend: backend(),
              restart: { backoff: exponentialBackoff({ initialMs: 50, jitter: 'none' }) },
            },
          },
        },
      },
    });
    const events: DispatcherEvent[] = [];
    d.on(e => events.push(e));
    await d.start();
    const before = d.getInstances('api', 'v1')[0]!;
    await d.addRequest({ url: '/crash' });
    await waitFor(
      () =>
        d.getInstances('api', 'v1')[0]!.state === 'ready' &&
        d.getInstances('api', 'v1')[0]!.pid !== before.pid,
      { timeoutMs: 10_000 },
    );
    const after = d.getInstances('api', 'v1')[0]!;
    expect(alive(before.pid)).toBe(false);
    expect(alive(after.pid)).toBe(true);
    expect(after.restarts).toBe(1);
    expect(events.find(e => e.type === 'instance-died')).toMatchObject({
      pid: before.pid,
      code: 3,
    });
    expect(events.find(e => e.type === 'instance-restart-scheduled')).toMatchObject({
      attempt: 1,
      delayMs: 50,
    });
    expect(responseJson<Who>(await d.addRequest({ url: '/' })).pid).toBe(after.pid);
  });

  it('stopVersion kills the processes; startVersion starts new ones with the same ids', async () => {
    const d = make({
      modules: {
        api: {
          versions: { v1: { backend: backend(), scaling: { kind: 'manual', instances: 2 } } },
        },
      },
    });
    await d.start();
    const pids = d.getInstances('api', 'v1').map(i => i.pid);
    await d.stopVersion('api', 'v1');
    expect(pids.some(alive)).toBe(false);
    await expect(d.addRequest({ url: '/' })).rejects.toMatchObject({ code: 'VERSION_STOPPED' });
    await d.startVersion('api', 'v1');
    const again = d.getInstances('api', 'v1');
    expect(again.map(i => i.id)).toEqual(['0', '1']);
    expect(again.every(i => alive(i.pid) && !pids.includes(i.pid))).toBe(true);
  });

  it('reports start failures with the output, and a failing /_ah/start', async () => {
    const d = make({
      modules: {
        exits: {
          versions: {
            v1: { backend: backend({ EXIT_AT_ONCE: '1' }), restart: { maxRestarts: 0 } },
          },
        },
        refuses: {
          versions: { v1: { backend: backend({ FAIL_START: '1' }), restart: { maxRestarts: 0 } } },
        },
      },
    });
    const failures: DispatcherEvent[] = [];
    d.on(
      e =>
        (e.type === 'instance-start-failed' || e.type === 'instance-gave-up') && failures.push(e),
    );
    await d.start();
    const exits = failures.find(e => e.type === 'instance-start-failed' && e.module === 'exits');
    expect(exits).toMatchObject({
      error: expect.objectContaining({
        code: 'INSTANCE_START_FAILED',
        message: expect.stringMatching(/exited before listening \(code 2.*missing configuration/s),
      }),
    });
    const refuses = failures.find(
      e => e.type === 'instance-start-failed' && e.module === 'refuses',
    );
    expect(refuses).toMatchObject({
      error: expect.objectContaining({
        message: expect.stringMatching(/\/_ah\/start .* answered 500/),
      }),
    });
    expect(failures.filter(e => e.type === 'instance-gave-up')).toHaveLength(2);
    expect(d.getInstances('refuses', 'v1')[0]).toMatchObject({ state: 'failed', pid: undefined });
    await expect(
      d.addRequest({ url: '/', module: 'refuses', instance: '0' }),
    ).rejects.toMatchObject({ code: 'INSTANCE_START_FAILED' });
  });

  it('kills a process that ignores SIGTERM after killTimeoutMs', async () => {
    const d = make({
      modules: {
        api: {
          versions: {
            v1: {
              backend: backend({ IGNORE_SIGTERM: '1' }, { killTimeoutMs: 200 }),
              lifecycle: { drainTimeoutMs: 0 },
            },
          },
        },
      },
    });
    await d.start();
    const pid = d.getInstances('api', 'v1')[0]!.pid;
    const started = Date.now();
    await d.close();
    expect(alive(pid)).toBe(false);
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
  });

  it('sends background requests and health checks over HTTP', async () => {
    const d = make({
      modules: {
        api: {
          versions: {
            v1: {
              backend: backend(),
              maxBackgroundThreads: 1,
              healthCheck: {
                intervalMs: 50,
                unhealthyThreshold: 1,
                healthyThreshold: 1,
                restartThreshold: 1000,
              },
            },
          },
        },
      },
    });
    await d.start();
    const background = responseJson<{ background: string }>(
      await d.sendBackgroundRequest('api', 'v1', '0', 'bg-7'),
    );
    expect(background).toEqual({ background: 'bg-7' });
    await new Promise(r => setTimeout(r, 150));
    expect(d.getInstances('api', 'v1')[0]).toMatchObject({ healthy: true, state: 'ready' });
    const who = responseJson<Who>(await d.addRequest({ url: '/' }));
    expect(who.lifecycle).toEqual(
      expect.arrayContaining(['/_ah/start', '/_ah/background', '/_ah/health']),
    );
  });
});

describe('remote instances', () => {
  let servers: TestServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.map(s => s.close()));
    servers = [];
  });

  it('routes to the URLs given, one instance each', async () => {
    servers = await Promise.all(
      [0, 1].map(i => startTestServer({ status: 200, body: { server: i } })),
    );
    const d = make({
      modules: {
        web: {
          versions: {
            v1: {
              backend: remote(servers.map(s => s.url)),
              scaling: { kind: 'manual', instances: 2 },
            },
          },
        },
      },
    });
    const seen = new Set<number>();
    for (let i = 0; i < 20; i++)
      seen.add(responseJson<{ server: number }>(await d.addRequest({ url: '/x' })).server);
    expect(seen).toEqual(new Set([0, 1]));
    expect(responseJson(await d.addRequest({ url: '/x', instance: '1' }))).toEqual({ server: 1 });
    expect(d.getInstances('web', 'v1').map(i => i.origin)).toEqual(servers.map(s => s.origin));
    expect(
      servers.every(s => s.requests.every(r => r.headers['x-forwarded-for'] === '0.1.0.1')),
    ).toBe(true);
    expect(() =>
      createDispatcher({
        modules: {
          web: {
            versions: {
              v1: {
                backend: remote(servers.map(s => s.url)),
                scaling: { kind: 'manual', instances: 3 },
              },
            },
          },
        },
      }),
    ).toThrow(/instances must be/);
  });

  it('a dead remote instance gives BACKEND_ERROR', async () => {
    servers = [await startTestServer({})];
    const url = servers[0]!.url;
    await servers[0]!.close();
    const d = make({ modules: { web: { versions: { v1: { backend: remote([url]) } } } } });
    await expect(d.addRequest({ url: '/' })).rejects.toMatchObject({
      code: 'BACKEND_ERROR',
      status: 502,
    });
  });

  it('rejects bad URLs', () => {
    expect(() => remote([])).toThrow(/non-empty list/);
    expect(() => remote(['ftp://x:1'])).toThrow(/bad URL/);
    expect(() => remote(['http://a b'])).toThrow(/bad URL/);
  });
});
