import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { parseConfig } from './config.js';
import { ConfigError } from './configError.js';
import { Value } from '@sinclair/typebox/value';
import { GatewayConfigFileSchema, gatewayConfigJsonSchema } from './configSchema.js';
import { withDefaults } from './configSchemaValue.js';

const root = join(import.meta.dirname, '..');
const committed = JSON.parse(
  readFileSync(join(root, 'schema', 'gateway.config.schema.json'), 'utf8'),
) as Record<string, unknown>;
const SAMPLE = readFileSync(join(root, 'gateway.config.yaml'), 'utf8');
const validate = new Ajv({ allErrors: true }).compile(committed);
const backendsDir = mkdtempSync(join(tmpdir(), 'x-gateway-schema-'));
for (const name of ['catalog', 'orders', 'reports'])
  writeFileSync(join(backendsDir, `${name}.js`), '');
afterAll(() => rmSync(backendsDir, { recursive: true, force: true }));
const file = '/etc/x/gateway.config.yaml';

function base(): Record<string, any> {
  return parse(SAMPLE) as Record<string, any>;
}

function issues(config: Record<string, unknown>): string[] {
  try {
    parseConfig(stringify(config), { file, backendsDir });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe('INVALID_CONFIG');
    return (error as ConfigError).issues.map(i => `${i.path}: ${i.message}`);
  }
  return [];
}

describe('gateway.config.yaml JSON Schema', () => {
  it('the committed schema/gateway.config.schema.json is what the TypeBox definition generates', () => {
    // Regenerate with `pnpm --filter @x/gateway build` (or `schema` after a build).
    expect(committed).toEqual(gatewayConfigJsonSchema());
    expect(JSON.stringify(committed)).not.toMatch(/"(expected|expectedKey|itemName)":/);
  });

  it('the shipped gateway.config.yaml references it and is valid against it', () => {
    expect(SAMPLE.split('\n')[0]).toBe(
      '# yaml-language-server: $schema=./schema/gateway.config.schema.json',
    );
    expect(validate(parse(SAMPLE)), JSON.stringify(validate.errors)).toBe(true);
    expect(issues(base())).toEqual([]);
  });

  it.each<[string, (c: Record<string, any>) => void, string]>([
    [
      'a string port',
      c => (c.server.port = 'abc'),
      'server.port: expected an integer from 0 to 65535, got "abc"',
    ],
    [
      'a number as a dispatch url',
      c => (c.dispatch[1].url = 5),
      'dispatch[1].url: expected a non-empty string of at most 100 characters, got 5',
    ],
    [
      'a bad module name in a rule',
      c => (c.dispatch[0].module = 'Bad_Name'),
      'dispatch[0].module: expected a lowercase host-name label (a-z, 0-9, -), got "Bad_Name"',
    ],
    [
      'a misspelt section',
      c => (c.sever = { port: 1 }),
      'sever: unknown field (did you mean "server"?); expected one of server, admin, dashboard, tracing, logging, dispatcher, modules, dispatch, splits, shards, workers, resilience, redis, replicas, rateLimit',
    ],
    [
      'an unknown key in a rule',
      c => (c.dispatch[0].host = 'x'),
      'dispatch[0].host: unknown field; expected one of url, module, service',
    ],
    [
      'an upper-case module name',
      c => (c.modules.Web = c.modules.web),
      'modules.Web: module names must be a lowercase host-name label (a-z, 0-9, -)',
    ],
    [
      'healthCheck: true',
      c => (c.modules.orders.versions.v1.healthCheck = true),
      'modules.orders.versions.v1.healthCheck: expected a mapping or false, got true',
    ],
    [
      'a number as the admin token',
      c => (c.admin.token = 5),
      'admin.token: expected a token of at least 16 characters, got 5',
    ],
    [
      'no remote URL',
      c => (c.modules.web.versions.v1.backend = { remote: [] }),
      'modules.web.versions.v1.backend.remote: expected at least one URL',
    ],
    [
      'a bad stickyBy',
      c => (c.splits[0].stickyBy = 'user'),
      'splits[0].stickyBy: expected one of cookie, ip, random, got "user"',
    ],
    [
      'a list as env',
      c => (c.modules.orders.versions.v2.env = { A: ['x'] }),
      'modules.orders.versions.v2.env.A: expected a string, got a list',
    ],
  ])(
    '%s: a typed issue naming field, expected and received; the JSON Schema rejects it too',
    (_name, edit, message) => {
      const config = base();
      edit(config);
      expect(issues(config)).toContain(message);
      expect(validate(JSON.parse(JSON.stringify(config)))).toBe(false);
    },
  );

  it('checks what the schema cannot say after it, in the same run', () => {
    const config = base();
    config.server.port = 'abc';
    config.dispatch.push({ url: '*/billing/*', module: 'billing' });
    expect(issues(config)).toEqual([
      'server.port: expected an integer from 0 to 65535, got "abc"',
      'dispatch[2].module: module "billing" is not defined in modules (known: web, catalog, orders, reports)',
    ]);
    // The JSON Schema accepts the rule: that the module exists is for the gateway to say.
    config.server.port = 8080;
    expect(validate(config)).toBe(true);
  });

  it('an empty section (YAML null) means its defaults, as before', () => {
    const text = SAMPLE.replace(/^dashboard:\n(?: {2}.*\n|\n)*/m, 'dashboard:\n\n');
    expect(text).toMatch(/^dashboard:\n\nlogging:/m);
    const config = parseConfig(text, { file, backendsDir });
    expect(config.dashboard).toEqual({
      maxStreams: 256,
      maxBufferedBytes: 1_048_576,
      stallTimeoutMs: 30_000,
      requireToken: false,
    });
  });

  it('fills in the same defaults as TypeBox Value.Default (the schema is their one source)', () => {
    const minimal = {
      modules: { web: { versions: { v1: { backend: { builtin: 'welcome' } } } } },
      shards: { module: 'web' },
      workers: { reports: { addresses: ['tcp://127.0.0.1:1'] } },
    };
    const ours = withDefaults(GatewayConfigFileSchema, structuredClone(minimal));
    expect(ours).toEqual(Value.Default(GatewayConfigFileSchema, structuredClone(minimal)));
    expect(ours).toMatchObject({
      server: { port: 8080, headersTimeoutMs: 10_000 },
      logging: { level: 'info' },
      modules: {
        web: { versions: { v1: { instances: 1, healthCheck: { path: '/_ah/health' } } } },
      },
      resilience: { orders: { retries: 2 } },
    });
  });
});
