import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
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

describe('hung and unstartable child processes', () => {
  /** GET through the front door: status, error code, x-served-by and the time to settle. */
  async function get(url: string) {
    const started = performance.now();
    const res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
    const body = (await res.json()) as {
      pid?: number;
      error?: { code?: string; message?: string };
    };
    return {
      status: res.status,
      code: body.error?.code,
      message: body.error?.message ?? '',
      pid: body.pid,
      servedBy: res.headers.get('x-served-by'),
      ms: performance.now() - started,
    };
  }

  it('a SIGSTOPped instance: front-door requests settle by requestTimeoutMs, the instance is ejected, then SIGKILLed and restarted', async () => {
    const requestTimeoutMs = 1_500;
    const d = make({
      requestTimeoutMs,
      modules: {
        api: {
          versions: {
            v1: {
              backend: backend(),
              scaling: { kind: 'manual', instances: 2 },
              balancer: 'roundRobin',
              healthCheck: {
                intervalMs: 300,
                timeoutMs: 300,
                unhealthyThreshold: 2,
                healthyThreshold: 1,
                restartThreshold: 8,
              },
              restart: {
                backoff: exponentialBackoff({ initialMs: 50, maxMs: 50, jitter: 'none' }),
              },
            },
          },
        },
      },
    });
    const events: DispatcherEvent[] = [];
    d.on(e => events.push(e));
    const door = await d.listen({ port: 0 });
    const before = d.getInstances('api', 'v1');
    const hung = before[0]!;
    const healthyPid = before[1]!.pid;
    const fine = await get(`${door.url}/x`);
    expect(fine.status).toBe(200);
    expect(fine.servedBy).toMatch(/^api\/v1\/[01]$/);

    process.kill(hung.pid!, 'SIGSTOP');
    const stoppedAt = performance.now();
    try {
      // round robin: about half of these go to the hung instance until it is ejected
      const answers = await Promise.all(Array.from({ length: 6 }, () => get(`${door.url}/x`)));
      for (const a of answers) {
        expect([200, 504]).toContain(a.status);
        expect(a.ms).toBeLessThan(requestTimeoutMs + 1_000);
        if (a.status === 504) {
          expect(a.code).toBe('DEADLINE_EXCEEDED');
          expect(a.servedBy).toBe('api/v1/0');
        } else expect(a.pid).toBe(healthyPid);
      }
      await waitFor(() => events.some(e => e.type === 'instance-unhealthy' && e.instance === '0'), {
        timeoutMs: 10_000,
      });
      const ejectedMs = performance.now() - stoppedAt;
      expect(d.getInstances('api', 'v1')[0]).toMatchObject({ healthy: false, health: 'unhealthy' });
      // out of rotation: every request goes to the healthy instance, at once
      for (let i = 0; i < 4; i++) {
        const a = await get(`${door.url}/x`);
        expect(a).toMatchObject({ status: 200, pid: healthyPid });
        expect(a.ms).toBeLessThan(requestTimeoutMs);
      }
      // still hung after restartThreshold probes: SIGKILLed (it is stopped) and replaced
      await waitFor(
        () => {
          const now = d.getInstances('api', 'v1')[0]!;
          return now.state === 'ready' && now.pid !== hung.pid && now.healthy;
        },
        { timeoutMs: 20_000 },
      );
      const restartedMs = performance.now() - stoppedAt;
      expect(alive(hung.pid)).toBe(false);
      expect(events).toContainEqual(
        expect.objectContaining({ type: 'instance-restart-scheduled', reason: 'unhealthy' }),
      );
      console.log(
        `hung instance: ejected after ${Math.round(ejectedMs)} ms, restarted after ${Math.round(restartedMs)} ms`,
      );
    } finally {
      try {
        process.kill(hung.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });

  it('a child that cannot start: INSTANCE_START_FAILED with its last stderr lines, crash-loop state, and a fast 503', async () => {
    const d = make({
      requestTimeoutMs: 10_000,
      modules: {
        broken: {
          versions: {
            v1: {
              backend: childProcess({ args: [join(dir, 'missing.js')], output: 'ignore' }),
              restart: {
                backoff: exponentialBackoff({ initialMs: 300, maxMs: 5_000, jitter: 'none' }),
              },
            },
          },
        },
      },
    });
    const events: DispatcherEvent[] = [];
    d.on(e => events.push(e));
    const door = await d.listen({ port: 0 });
    const failed = events.find(e => e.type === 'instance-start-failed');
    expect(failed).toBeDefined();
    const error = (failed as { error: { code: string; message: string; output?: string } }).error;
    expect(error.code).toBe('INSTANCE_START_FAILED');
    expect(error.output).toMatch(/Cannot find module/);
    expect(error.output!.split('\n').length).toBeLessThanOrEqual(20);
    expect(error.output!.length).toBeLessThanOrEqual(4_096);
    const info = d.getInstances('broken', 'v1')[0]!;
    expect(info.startFailures).toBeGreaterThanOrEqual(1);
    expect(info.lastError).toMatch(/Cannot find module/);
    expect(['crash-loop', 'starting']).toContain(info.state);

    // two failed starts in a row: a crash loop, requests fail fast
    await waitFor(() => d.getInstances('broken', 'v1')[0]!.startFailures >= 2, {
      timeoutMs: 10_000,
    });
    const a = await get(`${door.url}/`);
    expect(a.status).toBe(503);
    expect(a.code).toBe('INSTANCE_START_FAILED');
    expect(a.message).toMatch(/fails to start.*Cannot find module/s);
    expect(a.ms).toBeLessThan(2_000);
    await expect(d.addRequest({ url: '/' })).rejects.toMatchObject({
      code: 'INSTANCE_START_FAILED',
      output: expect.stringMatching(/Cannot find module/),
    });
    // the backoff grows: restarts are spaced, not a tight loop
    await waitFor(() => events.filter(e => e.type === 'instance-restart-scheduled').length >= 3, {
      timeoutMs: 10_000,
    });
    const delays = events
      .filter(e => e.type === 'instance-restart-scheduled')
      .map(e => (e as { delayMs: number }).delayMs);
    expect(delays[2]!).toBeGreaterThan(delays[0]!);
    await waitFor(() => d.getInstances('broken', 'v1')[0]!.state === 'crash-loop', {
      timeoutMs: 5_000,
    });
    expect(d.getInstances('broken', 'v1')[0]!.nextRestartAt).toBeGreaterThan(0);
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

  it('front door: a remote that never answers gets 504 by requestTimeoutMs; a stream that started in time may outlast it', async () => {
    const server = createServer((req, res) => {
      if (req.url === '/hang') return; // never answers
      res.writeHead(200, { 'content-type': 'text/plain' });
      let n = 0;
      const tick = setInterval(() => {
        res.write(`chunk ${n}\n`);
        if (++n === 6) {
          clearInterval(tick);
          res.end();
        }
      }, 250);
      res.on('close', () => clearInterval(tick));
    });
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const requestTimeoutMs = 1_000;
      const d = make({
        requestTimeoutMs,
        modules: { web: { versions: { v1: { backend: remote([`http://127.0.0.1:${port}`]) } } } },
      });
      const door = await d.listen({ port: 0 });
      const started = performance.now();
      const hung = await fetch(`${door.url}/hang`);
      const hungMs = performance.now() - started;
      expect(hung.status).toBe(504);
      expect(await hung.json()).toMatchObject({ error: { code: 'DEADLINE_EXCEEDED' } });
      expect(hung.headers.get('x-served-by')).toBe('web/v1/0');
      expect(hungMs).toBeGreaterThanOrEqual(requestTimeoutMs - 50);
      expect(hungMs).toBeLessThan(requestTimeoutMs + 1_000);
      const stream = await fetch(`${door.url}/stream`);
      expect(stream.status).toBe(200);
      expect((await stream.text()).split('\n').filter(Boolean)).toHaveLength(6);
    } finally {
      server.closeAllConnections();
      await new Promise(resolve => server.close(resolve));
    }
  });

  it('front door: time spent waiting for a busy instance counts against the deadline', async () => {
    const server = createServer((_req, res) => {
      setTimeout(() => res.end('slow'), 1_200);
    });
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const requestTimeoutMs = 2_000;
      const d = make({
        requestTimeoutMs,
        modules: {
          web: {
            versions: {
              v1: { backend: remote([`http://127.0.0.1:${port}`]), maxConcurrentRequests: 1 },
            },
          },
        },
      });
      const door = await d.listen({ port: 0 });
      const started = performance.now();
      const timed = (url: string) =>
        fetch(url).then(res => ({ status: res.status, ms: performance.now() - started }));
      // the second request waits ~1 200 ms for the only slot, then has ~800 ms left for a 1 200 ms answer
      const [first, second] = await Promise.all([timed(`${door.url}/a`), timed(`${door.url}/b`)]);
      expect(first.status).toBe(200);
      expect(second.status).toBe(504);
      expect(second.ms).toBeLessThan(requestTimeoutMs + 1_000);
    } finally {
      server.closeAllConnections();
      await new Promise(resolve => server.close(resolve));
    }
  });

  it('passive ejection: requests in a row past their deadline take the instance out of rotation', async () => {
    const server = createServer(req => {
      void req; // never answers
    });
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const d = make({
        modules: {
          web: {
            versions: {
              v1: {
                backend: remote([`http://127.0.0.1:${port}`]),
                // probes far apart: only the timeouts can eject it here
                healthCheck: { intervalMs: 600_000, ejectAfterTimeouts: 2 },
              },
            },
          },
        },
      });
      const events: DispatcherEvent[] = [];
      d.on(e => events.push(e));
      await d.start();
      for (let i = 0; i < 2; i++)
        await expect(d.addRequest({ url: '/', timeoutMs: 200 })).rejects.toMatchObject({
          code: 'DEADLINE_EXCEEDED',
        });
      expect(d.getInstances('web', 'v1')[0]).toMatchObject({
        healthy: false,
        health: 'unhealthy',
        unhealthyReason: expect.stringMatching(/2 requests in a row timed out/),
      });
      expect(events).toContainEqual(
        expect.objectContaining({ type: 'instance-unhealthy', reason: expect.any(String) }),
      );
    } finally {
      server.closeAllConnections();
      await new Promise(resolve => server.close(resolve));
    }
  });

  it('rejects bad URLs', () => {
    expect(() => remote([])).toThrow(/non-empty list/);
    expect(() => remote(['ftp://x:1'])).toThrow(/bad URL/);
    expect(() => remote(['http://a b'])).toThrow(/bad URL/);
  });
});
