import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isXError } from '@x/resilience';
import { createDispatcher, type Dispatcher } from '../createDispatcher.js';
import { inProcess } from '../backends/inProcess.js';
import { responseHeaders, responseJson } from '../responseTuple.js';
import type { InstanceRequest } from '../backend.js';

const who = inProcess((req: InstanceRequest) => ({
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({
    module: req.instance.module,
    version: req.instance.version,
    instance: req.instance.instance,
    path: req.path,
  }),
}));

function makeDispatcher(
  options: { softRouting?: boolean; random?: () => number; stickyBy?: 'cookie' | 'ip' } = {},
): Dispatcher {
  return createDispatcher({
    host: 'example.com',
    softRouting: options.softRouting ?? false,
    random: options.random ?? (() => 0.1),
    modules: {
      default: { versions: { v1: { backend: who }, v2: { backend: who } } },
      api: {
        versions: {
          v1: { backend: who, scaling: { kind: 'manual', instances: 2 } },
          v2: { backend: who },
        },
      },
      auto: {
        versions: { v1: { backend: who, scaling: { kind: 'automatic', minIdleInstances: 1 } } },
      },
      static: { versions: { v1: { backend: who } } },
    },
    rules: [
      { url: '*/static/*', module: 'static' },
      { url: 'example.com/api/*', module: 'api' },
    ],
    split: [
      { module: 'default', weights: { v1: 1, v2: 1 }, stickyBy: options.stickyBy ?? 'cookie' },
    ],
  });
}

describe('routing order: explicit → Host → rules → split → default', () => {
  let dispatcher: Dispatcher;
  beforeAll(async () => {
    dispatcher = makeDispatcher();
    await dispatcher.start();
  });
  afterAll(() => dispatcher.close());

  it.each([
    // [description, request, module, version, instance, moduleSource, versionSource]
    [
      'explicit module',
      { url: '/static/x', module: 'api' },
      'api',
      'v1',
      undefined,
      'explicit',
      'default',
    ],
    [
      'explicit module/version/instance',
      { url: '/', module: 'api', version: 'v1', instance: '1' },
      'api',
      'v1',
      '1',
      'explicit',
      'explicit',
    ],
    [
      'explicit wins over Host',
      { url: '/', module: 'static', headers: { host: 'api.example.com' } },
      'static',
      'v1',
      undefined,
      'explicit',
      'default',
    ],
    [
      'Host module',
      { url: '/', headers: { host: 'api.example.com' } },
      'api',
      'v1',
      undefined,
      'host',
      'default',
    ],
    [
      'Host version.module',
      { url: '/', headers: { host: 'v2.api.example.com' } },
      'api',
      'v2',
      undefined,
      'host',
      'host',
    ],
    [
      'Host instance.version.module',
      { url: '/', headers: { host: '1.v1.api.example.com:8080' } },
      'api',
      'v1',
      '1',
      'host',
      'host',
    ],
    [
      'Host -dot- form',
      { url: '/', headers: { host: '0-dot-v1-dot-api.example.com' } },
      'api',
      'v1',
      '0',
      'host',
      'host',
    ],
    [
      'Host version of the default module',
      { url: '/', headers: { host: 'v2.example.com' } },
      'default',
      'v2',
      undefined,
      'host',
      'host',
    ],
    [
      'Host wins over rules',
      { url: '/static/x', headers: { host: 'api.example.com' } },
      'api',
      'v1',
      undefined,
      'host',
      'default',
    ],
    [
      'unknown single label falls through to rules',
      { url: '/static/x', headers: { host: 'www.example.com' } },
      'static',
      'v1',
      undefined,
      'rule',
      'default',
    ],
    [
      'path rule, any host',
      { url: '/static/app.js?v=1', headers: { host: 'other.org' } },
      'static',
      'v1',
      undefined,
      'rule',
      'default',
    ],
    [
      'host+path rule',
      { url: '/api/items', headers: { host: 'example.com' } },
      'api',
      'v1',
      undefined,
      'rule',
      'default',
    ],
    [
      'host+path rule needs its host',
      { url: '/api/items', headers: { host: 'other.org' } },
      'default',
      'v1',
      undefined,
      'default',
      'split',
    ],
    [
      '/_ah/ is never dispatched by rules',
      { url: '/_ah/static/x' },
      'default',
      'v1',
      undefined,
      'default',
      'split',
    ],
    [
      'no Host: rules then default',
      { url: '/nothing' },
      'default',
      'v1',
      undefined,
      'default',
      'split',
    ],
  ])('%s', (_name, request, module, version, instance, moduleSource, versionSource) => {
    const decision = dispatcher.explain(request as never);
    expect(decision).toMatchObject({ module, version, instance, moduleSource, versionSource });
    expect(decision.reasons.length).toBeGreaterThan(0);
  });

  it.each([
    ['unknown explicit module', { url: '/', module: 'ghost' }, 'MODULE_DOES_NOT_EXIST'],
    [
      'unknown explicit version',
      { url: '/', module: 'api', version: 'v9' },
      'VERSION_DOES_NOT_EXIST',
    ],
    [
      'unknown explicit instance',
      { url: '/', module: 'api', version: 'v1', instance: '5' },
      'INVALID_INSTANCE_ID',
    ],
    [
      'instance of automatic scaling',
      { url: '/', module: 'auto', instance: '0' },
      'NOT_SUPPORTED_WITH_AUTO_SCALING',
    ],
    [
      'Host with unknown module',
      { url: '/', headers: { host: 'v1.ghost.example.com' } },
      'MODULE_DOES_NOT_EXIST',
    ],
    [
      'Host with unknown version',
      { url: '/', headers: { host: 'v9.api.example.com' } },
      'VERSION_DOES_NOT_EXIST',
    ],
    [
      'Host with unknown instance',
      { url: '/', headers: { host: '7.v1.api.example.com' } },
      'INVALID_INSTANCE_ID',
    ],
    [
      'Host addressing an automatic instance',
      { url: '/', headers: { host: '1.v1.auto.example.com' } },
      'NOT_SUPPORTED_WITH_AUTO_SCALING',
    ],
    ['malformed Host', { url: '/', headers: { host: 'a b' } }, 'INVALID_REQUEST'],
    [
      'too many Host labels',
      { url: '/', headers: { host: 'a.b.c.d.example.com' } },
      'INVALID_REQUEST',
    ],
  ])('%s is a typed error', async (_name, request, code) => {
    expect(() => dispatcher.explain(request as never)).toThrow(expect.objectContaining({ code }));
    const error = await dispatcher.addRequest(request as never).catch(e => e);
    expect(isXError(error, code)).toBe(true);
  });

  it('explains the rule that matched and why', () => {
    const decision = dispatcher.explain({ url: '/static/a', headers: { host: 'example.com' } });
    expect(decision.rule).toEqual({ index: 0, url: '*/static/*', module: 'static' });
    expect(decision.reasons.join('\n')).toMatch(/dispatch rule 0 \(\*\/static\/\*\) matched/);
    expect(decision.reasons.join('\n')).toMatch(/ready instance/);
  });

  it('serves the addressed instance for real', async () => {
    for (const id of ['0', '1', '1', '0']) {
      const response = await dispatcher.addRequest({
        url: '/who',
        headers: { host: `${id}.v1.api.example.com` },
      });
      expect(responseJson(response)).toEqual({
        module: 'api',
        version: 'v1',
        instance: id,
        path: '/who',
      });
    }
  });

  it('splits by weight with a sticky cookie', async () => {
    const first = await dispatcher.addRequest({ url: '/' });
    expect(responseJson<{ version: string }>(first).version).toBe('v1'); // random 0.1 → bucket 100
    const cookie = responseHeaders(first, 'set-cookie')[0]!;
    expect(cookie).toMatch(/^XSPLIT=100;/);
    const sticky = dispatcher.explain({ url: '/', headers: { cookie: 'XSPLIT=100' } });
    expect(sticky).toMatchObject({ version: 'v1', bucket: 100, setCookie: undefined });
    const other = await dispatcher.addRequest({ url: '/', headers: { cookie: 'a=b; XSPLIT=700' } });
    expect(responseJson<{ version: string }>(other).version).toBe('v2');
    expect(responseHeaders(other, 'set-cookie')).toEqual([]);
  });

  it('setSplit and setRules replace the routing at run time', () => {
    dispatcher.setSplit([]);
    expect(dispatcher.explain({ url: '/' })).toMatchObject({
      version: 'v1',
      versionSource: 'default',
    });
    dispatcher.setRules('dispatch:\n  - url: "*/x/*"\n    module: api\n');
    expect(dispatcher.explain({ url: '/x/1' }).module).toBe('api');
    expect(dispatcher.explain({ url: '/static/1' }).module).toBe('default');
    expect(() => dispatcher.setRules([{ url: '*/y', module: 'ghost' }])).toThrow(/does not exist/);
    expect(dispatcher.explain({ url: '/x/1' }).module).toBe('api');
    expect(() => dispatcher.setSplit([{ module: 'ghost', weights: { v1: 1 } }])).toThrow(
      /does not exist/,
    );
  });
});

describe('routing options', () => {
  it('soft routing sends unknown modules to the default module', async () => {
    const dispatcher = makeDispatcher({ softRouting: true });
    try {
      expect(dispatcher.explain({ url: '/', module: 'ghost' })).toMatchObject({
        module: 'default',
        moduleSource: 'soft',
      });
      const response = await dispatcher.addRequest({ url: '/', module: 'ghost', version: 'v2' });
      expect(responseJson(response)).toMatchObject({ module: 'default', version: 'v2' });
    } finally {
      await dispatcher.close();
    }
  });

  it('sticks by client address', () => {
    const dispatcher = makeDispatcher({ stickyBy: 'ip' });
    const a = dispatcher.explain({ url: '/', sourceIp: '10.1.2.3' });
    expect(dispatcher.explain({ url: '/', sourceIp: '10.1.2.3' })).toMatchObject({
      version: a.version,
      bucket: a.bucket,
    });
    expect(a.setCookie).toBeUndefined();
    const versions = new Set(
      Array.from(
        { length: 50 },
        (_, i) => dispatcher.explain({ url: '/', sourceIp: `10.0.0.${i}` }).version,
      ),
    );
    expect(versions).toEqual(new Set(['v1', 'v2']));
    return dispatcher.close();
  });
});
