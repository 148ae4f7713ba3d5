import { spawn } from 'node:child_process';
import { waitFor } from '@x/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { catalogItems, matches } from '../src/catalogItems.js';
import type { SearchResult } from '../src/searchRoute.js';
import {
  ADMIN_TOKEN,
  alive,
  CLI,
  defaultConfig,
  descendants,
  json,
  removeConfigs,
  runCli,
  startGateway,
  testConfig,
  writeConfig,
  type RunningGateway,
} from './helpers.js';

afterAll(removeConfigs);

const DEADLINE_MS = 1_500;

/** The test configuration (see helpers.ts), with a short report deadline. */
function e2eConfig() {
  const config = testConfig();
  config.resilience.reports.deadlineMs = DEADLINE_MS;
  return config;
}

describe('gateway CLI, end to end over real HTTP', () => {
  let gw: RunningGateway;

  beforeAll(async () => {
    // debug: the access lines too (info has none per request, see the Ctrl-C test)
    gw = await startGateway(e2eConfig(), { LOG_LEVEL: 'debug' });
  });

  afterAll(async () => {
    await gw?.process.kill('SIGKILL');
  });

  const search = (q: string) =>
    json<SearchResult>(`${gw.url}api/search?q=${encodeURIComponent(q)}&limit=100`);
  const expectedIds = (q: string) =>
    catalogItems()
      .filter(item => matches(item, q))
      .map(item => item.id);

  it('prints the URLs and the admin token, and serves health, readiness and the dashboard', async () => {
    const out = gw.process.stdout();
    for (const label of ['gateway', 'dashboard', 'metrics', 'admin token'])
      expect(out).toMatch(new RegExp(`^\\s+${label}\\s+\\S+`, 'm'));
    // no second server: the dispatcher's own loopback listener is off unless dispatcher.listen
    expect(out).not.toMatch(/^\s+front door\s+/m);
    expect(gw.token).toBe(ADMIN_TOKEN);
    expect((await json(`${gw.url}healthz`)).status).toBe(200);
    const ready = await json(`${gw.url}readyz`);
    expect(ready.status).toBe(200);
    expect(ready.body.checks.catalog.ok).toBe(true);
    const page = await fetch(`${gw.url}_x/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<title>x-gateway');
  });

  it('search fans out over every shard and merges the results once per item', async () => {
    const { status, body } = await search('a');
    expect(status).toBe(200);
    expect(body.partial).toBe(false);
    expect(body.shards.map(s => s.shard)).toEqual([0, 1, 2]);
    // No instance holds all three keys: the answer needs at least two of them.
    expect(new Set(body.shards.map(s => s.instance)).size).toBeGreaterThanOrEqual(2);
    expect(body.results.map(r => r.id)).toEqual(expectedIds('a'));
    for (const item of body.results) {
      expect(item.shard).toBe(item.id % 3);
      expect(item.instance).toBe(body.shards[item.shard]!.instance);
    }
    const bad = await json(`${gw.url}api/search?q=`);
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('TRANSLATION_FAILED');
  });

  it('dashboard cards count the searches each catalog instance served, with no access lines at info', async () => {
    for (let i = 0; i < 10; i++) expect((await search('a')).status).toBe(200);
    const catalog = (await gw.state()).modules.find(m => m.name === 'catalog')!.versions[0]!;
    const served = catalog.instances.map(i => i.served);
    // each search needs at least two instances; none of it goes through the front door
    expect(served.filter(n => n > 0).length).toBeGreaterThanOrEqual(2);
    expect(served.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(10 * 2);
    const endpoint = (await gw.state()).endpoints.find(e => e.name === 'search')!;
    expect(endpoint.errorRate).toBe(0);
  });

  it('serves both orders versions in the configured 80/20 proportion', async () => {
    const counts: Record<string, number> = {};
    const total = 300;
    let next = 0;
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        while (next < total) {
          const id = ++next;
          const { status, body } = await json(`${gw.url}api/orders/${id}`);
          expect(status).toBe(200);
          expect(body.source).toBe('live');
          expect(body.id).toBe(String(id));
          counts[body.version] = (counts[body.version] ?? 0) + 1;
        }
      }),
    );
    expect((counts.v1 ?? 0) + (counts.v2 ?? 0)).toBe(total);
    // Binomial(300, 0.2): sd ≈ 0.023, the tolerance is about 3.5 sd.
    expect((counts.v2 ?? 0) / total).toBeGreaterThan(0.12);
    expect((counts.v2 ?? 0) / total).toBeLessThan(0.28);
    const missing = await json(`${gw.url}api/orders/not-a-number`);
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('NOT_FOUND');
  });

  it('a report that exceeds its deadline fails cleanly with 504 TIMEOUT', async () => {
    const started = Date.now();
    const { status, body } = await json(`${gw.url}api/reports`, {
      method: 'POST',
      body: JSON.stringify({ kind: 'sales', delayMs: 10_000 }),
    });
    const took = Date.now() - started;
    expect(status).toBe(504);
    expect(body.error.code).toBe('TIMEOUT');
    expect(body.error.message).toContain(`${DEADLINE_MS} ms`);
    expect(took).toBeGreaterThanOrEqual(DEADLINE_MS - 50);
    expect(took).toBeLessThan(DEADLINE_MS + 4_000);
    // The worker stopped at the deadline too (its budget travelled with the call).
    await waitFor(
      async () => (await json(`${gw.url}api/reports/stats`)).body.totals.timedOut >= 1,
      {
        timeoutMs: 5_000,
        intervalMs: 100,
        message: 'the worker never reported the timed-out report',
      },
    );
    const ok = await json(`${gw.url}api/reports`, {
      method: 'POST',
      body: JSON.stringify({ kind: 'inventory', rows: 3 }),
    });
    expect(ok.status).toBe(200);
    expect(ok.body.rows).toHaveLength(3);
    const bad = await json(`${gw.url}api/reports`, { method: 'POST', body: '{"kind":"nope"}' });
    expect(bad.status).toBe(400);
  });

  it('a report whose client disconnects is cancelled on the worker', async () => {
    const stats = async () => (await json(`${gw.url}api/reports/stats`)).body.totals;
    const before = (await stats()).cancelled as number;
    const controller = new AbortController();
    const call = fetch(`${gw.url}api/reports`, {
      method: 'POST',
      body: JSON.stringify({ kind: 'orders', delayMs: 10_000 }),
      signal: controller.signal,
    }).catch(error => error as Error);
    // Disconnect once a worker is working on it, well before the deadline.
    await waitFor(async () => (await stats()).running >= 1, {
      timeoutMs: DEADLINE_MS,
      intervalMs: 20,
      message: 'no worker started the report',
    });
    controller.abort();
    expect(await call).toBeInstanceOf(Error);
    await waitFor(async () => (await stats()).cancelled > before, {
      timeoutMs: 5_000,
      intervalMs: 100,
      message: 'the worker never saw the cancellation',
    });
  });

  it('report jobs are queued, processed by the queue route and scheduled through dispatcher events', async () => {
    const queued = await json(`${gw.url}api/report-jobs`, {
      method: 'POST',
      body: JSON.stringify({ kind: 'sales', rows: 5 }),
    });
    expect(queued.status).toBe(202);
    expect(queued.body.state).toBe('queued');
    const scheduled = await json(`${gw.url}api/report-jobs`, {
      method: 'POST',
      body: JSON.stringify({ kind: 'orders', rows: 2, runInMs: 300 }),
    });
    expect(scheduled.body.state).toBe('scheduled');
    for (const id of [queued.body.id, scheduled.body.id]) {
      const done = await waitFor(
        async () => {
          const job = (await json(`${gw.url}api/report-jobs/${id}`)).body;
          return job.state === 'done' ? job : undefined;
        },
        { timeoutMs: 10_000, intervalMs: 100, message: `job ${id} never finished` },
      );
      expect(done.result.rows).toBeGreaterThan(0);
    }
    expect((await json(`${gw.url}api/report-jobs/unknown`)).status).toBe(404);
  });

  it('everything else goes through the dispatcher front door, with its admin API behind the token', async () => {
    const info = await json(`${gw.url}catalog/info`, { headers: { 'x-request-id': 'e2e-req-1' } });
    expect(info.status).toBe(200);
    expect(info.body.shards).toHaveLength(2);
    expect(info.headers.get('x-request-id')).toBe('e2e-req-1');
    // pino: one JSON line per request, carrying its id.
    const line = await waitFor(() =>
      gw.process
        .stdout()
        .split('\n')
        .find(l => l.includes('"reqId":"e2e-req-1"')),
    );
    expect(JSON.parse(line)).toMatchObject({
      reqId: 'e2e-req-1',
      url: '/catalog/info',
      status: 200,
    });
    const home = await json(`${gw.url}`);
    expect(home.body.servedBy).toMatch(/^web\/v1/);
    expect((await json(`${gw.url}_x/admin/modules`)).status).toBe(401);
    expect(
      (
        await json(`${gw.url}_x/admin/modules`, {
          headers: { authorization: 'Bearer wrong-token-wrong-token' },
        })
      ).status,
    ).toBe(403);
    const modules = await json(`${gw.url}_x/admin/modules`, {
      headers: { authorization: `Bearer ${gw.token}` },
    });
    expect(modules.status).toBe(200);
    expect(modules.body.modules.map((m: { name: string }) => m.name)).toEqual([
      'web',
      'catalog',
      'orders',
      'reports',
    ]);
  });

  it('/metrics has the metrics of every package in Prometheus format', async () => {
    const text = await (await fetch(`${gw.url}metrics`)).text();
    for (const name of [
      'x_gateway_requests_total',
      'x_rest_client_requests_total',
      'x_resilience_calls_total',
      'x_route_tasks_total',
      'x_dispatcher_requests_total',
      'x_worker_rpc_client_calls_total',
      'x_gateway_process_cpu_user_seconds_total',
    ])
      expect(text).toMatch(new RegExp(`^${name}[{ ]`, 'm'));
  });

  it('killing a catalog instance keeps search answering from the replicas', async () => {
    const before = await search('e');
    const victim = (await gw.state()).modules
      .find(m => m.name === 'catalog')!
      .versions[0]!.instances.find(i => i.id === '1')!;
    expect(victim.state).toBe('ready');
    process.kill(victim.pid!, 'SIGKILL');
    await waitFor(
      async () =>
        (await gw.state()).modules
          .find(m => m.name === 'catalog')!
          .versions[0]!.instances.find(i => i.id === '1')!.state === 'down',
      { timeoutMs: 5_000, intervalMs: 50, message: 'the dispatcher never saw the instance die' },
    );
    // the death is one warn line on stdout, with what and why, and no stack
    const warnings = () =>
      gw.process
        .stdout()
        .split('\n')
        .filter(line => line.includes(`"pid":${victim.pid},`) && /"level":[4-6]0,/.test(line));
    await waitFor(() => warnings().length > 0, {
      timeoutMs: 5_000,
      intervalMs: 50,
      message: 'the death of the instance was not logged',
    });
    await new Promise(resolve => setTimeout(resolve, 200));
    const lines = warnings();
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({
      level: 40,
      msg: 'instance died',
      module: 'catalog',
      instance: '1',
      reason: 'SIGKILL',
    });
    expect(lines[0]).not.toMatch(/stack/);
    for (let i = 0; i < 6; i++) {
      const { status, body } = await search('e');
      expect(status).toBe(200);
      expect(body.partial).toBe(false);
      expect(body.shards.map(s => s.shard)).toEqual([0, 1, 2]);
      expect(body.shards.every(s => s.instance !== '1')).toBe(true);
      expect(body.results.map(r => r.id)).toEqual(before.body.results.map(r => r.id));
    }
    expect((await json(`${gw.url}readyz`)).status).toBe(200);
  });

  it('orders answer from the fallback when every version is down, and the circuit opens', async () => {
    const admin = (path: string) =>
      json(`${gw.url}_x/admin/modules/orders/versions/${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${gw.token}` },
      });
    expect((await admin('v1/stop')).status).toBe(200);
    expect((await admin('v2/stop')).status).toBe(200);
    try {
      for (let id = 1; id <= 4; id++) {
        const { status, body } = await json(`${gw.url}api/orders/${id}`);
        expect(status).toBe(200);
        expect(body).toMatchObject({ id: String(id), status: 'unknown', source: 'fallback' });
        // the dispatcher's own error (in process), or the policies that stop the calls
        expect(body.reason).toMatch(/^(VERSION_STOPPED|CIRCUIT_OPEN|RETRY_BUDGET_EXHAUSTED)$/);
      }
      const circuits = (await gw.state()).orders.circuits;
      expect(circuits.map(c => c.state)).toContain('open');
      expect((await json(`${gw.url}readyz`)).status).toBe(503);
    } finally {
      expect((await admin('v1/start')).status).toBe(200);
      expect((await admin('v2/start')).status).toBe(200);
    }
  });

  it('SIGTERM drains the requests in flight and leaves no child process', async () => {
    const pids = [...new Set([...(await gw.instancePids()), ...descendants(gw.process.pid)])];
    expect(pids.length).toBeGreaterThanOrEqual(5);
    expect(pids.every(alive)).toBe(true);
    const inFlight = json(`${gw.url}api/reports`, {
      method: 'POST',
      body: JSON.stringify({ kind: 'sales', delayMs: 400 }),
    });
    await new Promise(resolve => setTimeout(resolve, 100));
    const code = await gw.process.kill('SIGTERM');
    expect(code).toBe(0);
    expect((await inFlight).status).toBe(200);
    expect(gw.process.stderr()).toMatch(/stopped in \d+ ms/);
    expect(pids.filter(alive)).toEqual([]);
  });
});

describe('Ctrl-C', () => {
  it('reaches the whole process group, drains, exits 0 and logs no stop failures', async () => {
    const file = writeConfig(testConfig());
    // detached: its own process group, like a terminal's foreground job
    const child = spawn(process.execPath, [CLI, '--config', file, '--port', '0'], {
      detached: true,
      env: { ...process.env, LOG_LEVEL: 'info', GATEWAY_ADMIN_TOKEN: ADMIN_TOKEN, REDIS_URL: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', chunk => (stdout += chunk));
    child.stderr.on('data', chunk => (stderr += chunk));
    const exited = new Promise<number | null>(resolve => child.on('close', code => resolve(code)));
    try {
      await waitFor(() => stdout.includes('gateway ready at'), {
        timeoutMs: 45_000,
        intervalMs: 100,
        message: 'the gateway did not start',
      });
      const url = /gateway ready at (\S+)/.exec(stdout)![1]!;
      expect((await fetch(`${url}api/search?q=a`)).status).toBe(200);
      process.kill(-child.pid!, 'SIGINT');
      expect(await exited).toBe(0);
      expect(stderr).toMatch(/stopped in \d+ ms/);
      expect(stdout).not.toMatch(/ECONNREFUSED|stop request failed/);
      // LOG_LEVEL=info: no access line per request
      expect(stdout).not.toMatch(/"msg":"request"/);
    } finally {
      if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL');
    }
  }, 60_000);
});

describe('configuration errors', () => {
  it('name the bad field and exit non-zero before starting anything', async () => {
    const config = defaultConfig();
    config.modules.catalog.versions.v1.instances = 'x';
    config.splits[0].weights.v3 = 5;
    config.shards.replicas = 4;
    config.resilience.search.timeoutMz = 10;
    const { code, stderr, stdout } = await runCli(['--config', writeConfig(config), '--port', '0']);
    expect(code).toBe(2);
    expect(stdout).not.toMatch(/gateway ready/);
    expect(stderr).toContain(
      'modules.catalog.versions.v1.instances: expected an integer from 1 to 64, got "x"',
    );
    expect(stderr).toContain(
      'splits[0].weights.v3: version "v3" is not defined in modules.orders.versions',
    );
    expect(stderr).toContain('shards.replicas: must be <= shards.count (3), got 4');
    expect(stderr).toContain(
      'resilience.search.timeoutMz: unknown field (did you mean "timeoutMs"?)',
    );
  });

  it('report YAML syntax errors with their line, and a missing file', async () => {
    const broken = await runCli(['--config', writeConfig('server:\n  port: [1\nmodules: {}\n')]);
    expect(broken.code).toBe(2);
    expect(broken.stderr).toMatch(/line \d+, column \d+/);
    const missing = await runCli(['--config', '/nonexistent/gateway.config.yaml']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('cannot read the file (ENOENT)');
    const badFlag = await runCli(['--port', 'eighty']);
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toContain('--port: expected an integer from 0 to 65535, got "eighty"');
  });
});
