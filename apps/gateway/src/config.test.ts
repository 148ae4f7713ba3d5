import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { parseConfig } from './config.js';
import { ConfigError } from './configError.js';

const backendsDir = mkdtempSync(join(tmpdir(), 'x-gateway-backends-'));
for (const name of ['catalog', 'orders', 'reports'])
  writeFileSync(join(backendsDir, `${name}.js`), '');
const DEFAULT_TEXT = readFileSync(join(import.meta.dirname, '..', 'gateway.config.yaml'), 'utf8');
const file = '/etc/x/gateway.config.yaml';
afterAll(() => rmSync(backendsDir, { recursive: true, force: true }));

function base(): Record<string, any> {
  return parse(DEFAULT_TEXT) as Record<string, any>;
}

function issues(config: Record<string, unknown> | string): string[] {
  try {
    parseConfig(typeof config === 'string' ? config : stringify(config), { file, backendsDir });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).issues.map(i => `${i.path}: ${i.message}`);
  }
  return [];
}

describe('parseConfig', () => {
  it('health checks: defaults, overrides, false, and typed issues naming the field', () => {
    const config = parseConfig(DEFAULT_TEXT, { file, backendsDir });
    expect(config.modules.orders!.versions.v1!.healthCheck).toEqual({
      path: '/_ah/health',
      intervalMs: 1_000,
      timeoutMs: 1_000,
      unhealthyThreshold: 2,
      healthyThreshold: 2,
      restartThreshold: 10,
      ejectAfterTimeouts: 3,
    });
    const custom = base();
    custom.modules.orders.versions.v1.healthCheck = { intervalMs: 500, restartThreshold: 4 };
    custom.modules.orders.versions.v2.healthCheck = false;
    const parsed = parseConfig(stringify(custom), { file, backendsDir });
    expect(parsed.modules.orders!.versions.v1!.healthCheck).toMatchObject({
      intervalMs: 500,
      restartThreshold: 4,
      timeoutMs: 1_000,
    });
    expect(parsed.modules.orders!.versions.v2!.healthCheck).toBe(false);
    const bad = base();
    bad.modules.orders.versions.v1.healthCheck = { intervalMs: 'soon', path: 'health', every: 1 };
    expect(issues(bad)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /^modules\.orders\.versions\.v1\.healthCheck\.intervalMs: expected an integer.*got "soon"/,
        ),
        expect.stringMatching(
          /^modules\.orders\.versions\.v1\.healthCheck\.path: expected a path starting with \//,
        ),
        expect.stringMatching(/^modules\.orders\.versions\.v1\.healthCheck\.every: unknown field/),
      ]),
    );
  });

  it('accepts the shipped gateway.config.yaml and fills in the defaults', () => {
    const config = parseConfig(DEFAULT_TEXT, { file, backendsDir });
    expect(Object.keys(config.modules)).toEqual(['web', 'catalog', 'orders', 'reports']);
    expect(config.modules.catalog!.versions.v1!.instances).toBe(3);
    expect(config.modules.catalog!.versions.v1!.backend).toEqual({
      kind: 'process',
      command: process.execPath,
      args: [join(backendsDir, 'catalog.js')],
      protocol: 'http',
    });
    expect(config.modules.reports!.versions.v1!.backend).toMatchObject({ protocol: 'zmq' });
    expect(config.splits).toEqual([
      { module: 'orders', weights: { v1: 80, v2: 20 }, stickyBy: 'cookie' },
    ]);
    expect(config.shards).toEqual({ module: 'catalog', version: 'v1', count: 3, replicas: 2 });
    expect(config.workers.reports).toEqual({ kind: 'module', module: 'reports', version: 'v1' });
    expect(config.admin.token).toBeUndefined();
    expect(config.redis.url).toBeUndefined();
    expect(config.dispatch).toEqual([
      { url: '*/catalog/*', module: 'catalog' },
      { url: '*/orders/*', module: 'orders' },
    ]);
  });

  it('names every bad field at once', () => {
    const config = base();
    config.modules.catalog.versions.v1.instances = 'x';
    config.modules.orders.versions.v2.instances = 100;
    config.server.port = 70_000;
    config.logging.level = 'loud';
    config.admin.token = 'short';
    config.redis.url = 'http://redis';
    expect(issues(config).sort()).toEqual([
      'admin.token: expected a token of at least 16 characters, got "short"',
      'logging.level: expected one of fatal, error, warn, info, debug, trace, silent, got "loud"',
      'modules.catalog.versions.v1.instances: expected an integer from 1 to 64, got "x"',
      'modules.orders.versions.v2.instances: expected an integer from 1 to 64, got 100',
      'redis.url: expected a redis:// or rediss:// URL, got "http://redis"',
      'server.port: expected an integer from 0 to 65535, got 70000',
    ]);
  });

  it('reads replicas: defaults, and bad values named with what was expected', () => {
    expect(parseConfig(stringify(base()), { file, backendsDir }).replicas).toEqual({
      id: undefined,
      publishIntervalMs: 1_000,
      staleAfterMs: 5_000,
      eventTakeoverMs: 3_000,
    });
    const config = base();
    config.replicas = { id: 'gw a', publishIntervalMs: 50, staleAfterMs: 300, eventTakeoverMs: -1 };
    expect(issues(config).sort()).toEqual([
      'replicas.eventTakeoverMs: expected an integer from 100 to 86400000, got -1',
      'replicas.id: expected letters, digits, ., _, : or - (at most 100), got "gw a"',
      'replicas.publishIntervalMs: expected an integer from 100 to 60000, got 50',
      'replicas.staleAfterMs: expected at least 2 × replicas.publishIntervalMs (2000), got 300',
    ]);
    const stale = base();
    stale.replicas = { publishIntervalMs: 2_000, staleAfterMs: 3_000 };
    expect(issues(stale)).toEqual([
      'replicas.staleAfterMs: expected at least 2 × replicas.publishIntervalMs (4000), got 3000',
    ]);
    const unknown = base();
    unknown.replicas = { redis: 'x' };
    expect(issues(unknown)[0]).toMatch(/^replicas\.redis: /);
  });

  it('checks references between sections', () => {
    const config = base();
    config.dispatch.push({ url: '*/billing/*', module: 'billing' });
    config.dispatch.push({ url: 'a*b/x', module: 'orders' });
    config.splits[0].weights = { v1: 0, v2: 0 };
    config.shards.version = 'v9';
    config.workers.reports.module = 'catalog';
    config.dispatcher.defaultModule = 'nope';
    const found = issues(config);
    expect(found).toContain(
      'dispatcher.defaultModule: module "nope" is not defined in modules (known: web, catalog, orders, reports)',
    );
    expect(found).toContain(
      'dispatch[2].module: module "billing" is not defined in modules (known: web, catalog, orders, reports)',
    );
    expect(found.some(i => i.startsWith('dispatch[3].url: '))).toBe(true);
    expect(found).toContain('splits[0].weights: at least one weight must be > 0');
    expect(found).toContain(
      'shards.version: version "v9" is not defined in modules.catalog.versions',
    );
    expect(found).toContain(
      'workers.reports.module: catalog/v1 must run ZeroMQ workers (backend.protocol: zmq)',
    );
  });

  it('hints at misspelt keys and rejects ambiguous backends and missing scripts', () => {
    const config = base();
    config.modules.catalog.versions.v1.instnaces = 2;
    config.modules.orders.versions.v1.backend = { script: 'orders', remote: ['http://a:1'] };
    config.modules.orders.versions.v2.backend = { script: 'ordres' };
    const found = issues(config);
    expect(found).toContain(
      'modules.catalog.versions.v1.instnaces: unknown field (did you mean "instances"?); expected one of backend, instances, maxConcurrentRequests, env, restart, healthCheck',
    );
    expect(found).toContain(
      'modules.orders.versions.v1.backend: give exactly one of script, command, remote or builtin, got script and remote',
    );
    expect(found).toContain(
      `modules.orders.versions.v2.backend.script: no such file ${join(backendsDir, 'ordres.js')} (built-in scripts: catalog, orders, reports)`,
    );
  });

  it("reads the slow-client timeouts (defaults: the front door's 10 s / 30 s)", () => {
    const shipped = parseConfig(DEFAULT_TEXT, { file, backendsDir });
    expect(shipped.server).toMatchObject({ headersTimeoutMs: 10_000, requestTimeoutMs: 30_000 });
    const config = base();
    delete config.server.headersTimeoutMs;
    delete config.server.requestTimeoutMs;
    expect(parseConfig(stringify(config), { file, backendsDir }).server).toMatchObject({
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 30_000,
    });
    config.server.headersTimeoutMs = 5_000;
    config.server.requestTimeoutMs = 1_000;
    expect(issues(config)).toEqual([
      'server.headersTimeoutMs: must be <= server.requestTimeoutMs (1000), got 5000',
    ]);
    config.server.headersTimeoutMs = 0;
    config.server.requestTimeoutMs = 30_000;
    expect(issues(config)).toEqual([
      'server.headersTimeoutMs: expected an integer from 1 to 86400000, got 0',
    ]);
  });

  it('reads server.maxPipelinedRequests (default 8), naming a bad value', () => {
    expect(parseConfig(DEFAULT_TEXT, { file, backendsDir }).server.maxPipelinedRequests).toBe(8);
    const config = base();
    delete config.server.maxPipelinedRequests;
    expect(parseConfig(stringify(config), { file, backendsDir }).server.maxPipelinedRequests).toBe(
      8,
    );
    config.server.maxPipelinedRequests = 2;
    expect(parseConfig(stringify(config), { file, backendsDir }).server.maxPipelinedRequests).toBe(
      2,
    );
    config.server.maxPipelinedRequests = 0;
    expect(issues(config)).toEqual([
      'server.maxPipelinedRequests: expected an integer from 1 to 1024, got 0',
    ]);
  });

  it('reads the dashboard limits and the admin lockout, naming bad values', () => {
    const shipped = parseConfig(DEFAULT_TEXT, { file, backendsDir });
    expect(shipped.dashboard).toEqual({
      requireToken: false,
      maxStreams: 256,
      maxBufferedBytes: 1_048_576,
      stallTimeoutMs: 30_000,
    });
    expect(shipped.admin).toMatchObject({ maxFailures: 10, failureWindowMs: 60_000 });
    const config = base();
    delete config.dashboard;
    expect(parseConfig(stringify(config), { file, backendsDir }).dashboard.maxStreams).toBe(256);
    config.dashboard = { requireToken: 'yes', maxStreams: -1, maxBufferedBytes: 10 };
    config.admin.maxFailures = 0;
    expect(issues(config)).toEqual([
      'admin.maxFailures: expected an integer from 1 to 1000000, got 0',
      'dashboard.maxStreams: expected an integer from 0 to 100000, got -1',
      'dashboard.maxBufferedBytes: expected an integer from 1024 to 1073741824, got 10',
      'dashboard.requireToken: expected true or false, got "yes"',
    ]);
  });

  it('reads the dashboard tracing (opt-in, on in the shipped config), naming bad values', () => {
    const shipped = parseConfig(DEFAULT_TEXT, { file, backendsDir });
    expect(shipped.tracing).toEqual({
      dashboardTraces: 20,
      sampleRatio: 1,
      maxSpansPerTrace: 500,
      maxSpans: 20_000,
    });
    const config = base();
    delete config.tracing;
    expect(parseConfig(stringify(config), { file, backendsDir }).tracing.dashboardTraces).toBe(0);
    config.tracing = { dashboardTraces: 0 };
    expect(parseConfig(stringify(config), { file, backendsDir }).tracing.dashboardTraces).toBe(0);
    config.tracing = { dashboardTraces: -1, sampleRatio: 2 };
    expect(issues(config)).toEqual([
      'tracing.dashboardTraces: expected an integer from 0 to 1000, got -1',
      'tracing.sampleRatio: expected a number from 0 to 1, got 2',
    ]);
    config.tracing = { maxSpansPerTrace: 1_000, maxSpans: 100 };
    expect(issues(config)).toEqual([
      'tracing.maxSpansPerTrace: must be <= tracing.maxSpans (100), got 1000',
    ]);
  });

  it('refuses an alias bomb with a ConfigError, not a ReferenceError (regression)', () => {
    const bomb = [
      'a: &a [x,x,x,x,x,x,x,x,x]',
      'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]',
      'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]',
      'd: [*c,*c,*c,*c,*c,*c,*c,*c,*c]',
    ].join('\n');
    expect(issues(bomb)).toEqual([
      ': Excessive alias count indicates a resource exhaustion attack',
    ]);
  });

  it('reports YAML errors with their position, and required sections', () => {
    const [yamlIssue] = issues('modules: [1\n');
    expect(yamlIssue).toMatch(/^line \d+, column \d+: Flow sequence/);
    expect(yamlIssue).not.toMatch(/at line/);
    expect(issues('server: {}\n')).toEqual([
      'modules: is required',
      'shards: is required',
      'workers: is required',
    ]);
  });
});
