import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isXError } from '@x/resilience';
import { inProcess } from './backends/inProcess.js';
import { createDispatcher } from './createDispatcher.js';
import { compileDispatchRules, parseDispatchYaml } from './dispatchRules.js';
import { InvalidDispatchRuleError } from './errors.js';

const YAML = `
application: demo
dispatch:
  # first match wins
  - url: "*/favicon.ico"
    module: default
  - url: "simple-sample.appspot.com/"
    module: default
  - url: "*/mobile/*"
    service: mobile-frontend
  - url: "*.example.com/api/*"
    module: api
  - url: "*example.org/*"
    module: org
  - url: "admin.example.com/*"
    module: admin
  - url: "/static/*"
    module: static
`;

describe('dispatch rules', () => {
  const rules = parseDispatchYaml(YAML);

  it('parses dispatch.yaml (module and service, host and path globs)', () => {
    expect(rules.size).toBe(7);
    expect(rules.rules[2]).toMatchObject({
      module: 'mobile-frontend',
      hostMatch: 'any',
      path: '/mobile/',
      pathPrefix: true,
    });
    expect(rules.rules[3]).toMatchObject({
      module: 'api',
      hostMatch: 'suffix',
      host: '.example.com',
      path: '/api/',
    });
    expect(rules.rules[1]).toMatchObject({
      hostMatch: 'exact',
      host: 'simple-sample.appspot.com',
      path: '/',
      pathPrefix: false,
    });
  });

  it.each([
    ['', '/favicon.ico', 'default', 0],
    ['any.host', '/favicon.ico', 'default', 0],
    ['simple-sample.appspot.com', '/', 'default', 1],
    ['simple-sample.appspot.com', '/x', undefined, undefined],
    ['x.org', '/mobile/', 'mobile-frontend', 2],
    ['x.org', '/mobile/a/b', 'mobile-frontend', 2],
    ['x.org', '/mobile', undefined, undefined],
    ['www.example.com', '/api/items', 'api', 3],
    ['example.com', '/api/items', undefined, undefined],
    ['www.example.com', '/apix', undefined, undefined],
    ['example.org', '/anything', 'org', 4],
    ['fooexample.org', '/anything', 'org', 4],
    ['admin.example.com', '/', 'admin', 5],
    ['admin.example.com', '/api/x', 'api', 3],
    ['whatever', '/static/app.js', 'static', 6],
    ['whatever', '/_ah/start', undefined, undefined],
    ['whatever', '/_ah/queue/deferred', undefined, undefined],
  ])('host %s path %s -> %s', (host, path, module, index) => {
    const rule = rules.match(host, path);
    expect(rule?.module).toBe(module);
    expect(rule?.index).toBe(index);
  });

  it('lets /_ah/queue/deferred through (the allow-list) and nothing else under /_ah/', () => {
    const set = compileDispatchRules([{ url: '*/_ah/*', module: 'worker' }]);
    expect(set.match('h', '/_ah/queue/deferred')?.module).toBe('worker');
    expect(set.match('h', '/_ah/warmup')).toBeUndefined();
  });

  it.each([
    [[{ url: '*/x' }], /exactly one of module and service/],
    [[{ url: '*/x', module: 'a', service: 'b' }], /exactly one/],
    [[{ url: '', module: 'a' }], /url must be a non-empty string/],
    [[{ url: 'example.com', module: 'a' }], /has no path/],
    [[{ url: '*/a*b', module: 'a' }], /glob may only end/],
    [[{ url: 'ex*ample.com/', module: 'a' }], /invalid host/],
    [[{ url: '*.ex*.com/', module: 'a' }], /invalid host pattern/],
    [[{ url: '10.0.0.1/', module: 'a' }], /IPv4/],
    [[{ url: 'v1-dot-api.example.com/', module: 'a' }], /-dot-/],
    [[{ url: `*/${'a'.repeat(100)}`, module: 'a' }], /longer than 100/],
    [[{ url: '*/x', module: 'Bad_Name' }], /invalid module name/],
    [[{ url: '*/x?y', module: 'a' }], /invalid path/],
    [[{ url: '*/x', module: 'a', extra: 1 }], /unknown field/],
    [['nope'], /must be a mapping/],
  ])('rejects %j', (list, message) => {
    expect(() => compileDispatchRules(list as never)).toThrow(InvalidDispatchRuleError);
    expect(() => compileDispatchRules(list as never)).toThrow(message);
  });

  it("accepts at most 20 rules by default, App Engine's dispatch.yaml limit; maxRules lifts it", async () => {
    const yaml = (n: number) =>
      `dispatch:\n${Array.from({ length: n }, (_, i) => `  - url: '*/p${i}/*'\n    module: default\n`).join('')}`;
    expect(parseDispatchYaml(yaml(20)).size).toBe(20);
    expect(() => parseDispatchYaml(yaml(21))).toThrow(InvalidDispatchRuleError);
    expect(() => parseDispatchYaml(yaml(21))).toThrow(
      /21 rules, at most 20 allowed \(App Engine's limit for dispatch.yaml; pass maxRules to lift it\)/,
    );
    expect(parseDispatchYaml(yaml(21), { maxRules: 100 }).size).toBe(21);
    expect(() => compileDispatchRules([], { maxRules: -1 })).toThrow(
      /maxRules must be an integer >= 0, got -1/,
    );
    const modules = {
      default: { versions: { v1: { backend: inProcess(() => ({ status: 204 })) } } },
    };
    expect(() => createDispatcher({ modules, rules: yaml(21) })).toThrow(/at most 20 allowed/);
    const lifted = createDispatcher({ modules, rules: yaml(21), maxRules: 50 });
    try {
      expect(lifted.explain({ url: '/p20/x' }).rule).toMatchObject({ index: 20 });
      lifted.setRules(yaml(22)); // reloads and setRules keep the lifted limit
      expect(() => lifted.setRules(yaml(51))).toThrow(/at most 50 allowed/);
    } finally {
      await lifted.close();
    }
  });

  it('checks modules and the rule count', () => {
    expect(() =>
      compileDispatchRules([{ url: '*/x', module: 'ghost' }], { modules: ['default'] }),
    ).toThrow(/"ghost" does not exist/);
    const many = Array.from({ length: 4 }, () => ({ url: '*/x', module: 'a' }));
    expect(() => compileDispatchRules(many, { maxRules: 3 })).toThrow(/at most 3/);
  });

  it.each([
    ['dispatch: [', /not valid YAML/],
    ['- a', /must be a mapping/],
    ['dispatch: 3', /must be a list/],
    ['other: 1', /unknown top-level key/],
    ['dispatch:\n  - url: "*/x"\n    module: a\n    module: b', /not valid YAML/],
  ])('rejects YAML %j', (text, message) => {
    expect(() => parseDispatchYaml(text)).toThrow(message);
  });

  it('a self-referencing YAML alias is INVALID_DISPATCH_RULE, not a TypeError (regression)', () => {
    for (const text of [
      'dispatch: &r\n  - url: "*/x"\n    module: *r\n',
      'dispatch:\n  - &m {url: "*/x", module: [*m]}\n',
    ]) {
      let error: unknown;
      try {
        parseDispatchYaml(text);
      } catch (e) {
        error = e;
      }
      expect(isXError(error, 'INVALID_DISPATCH_RULE')).toBe(true);
      expect((error as Error).message).toMatch(/invalid module name a (list|mapping)/);
    }
  });

  it('accepts empty documents', () => {
    expect(parseDispatchYaml('').size).toBe(0);
    expect(parseDispatchYaml('dispatch:').size).toBe(0);
    expect(parseDispatchYaml('application: x').size).toBe(0);
  });

  it('any input gives rules or INVALID_DISPATCH_RULE, never another error (property)', () => {
    const urlChars = fc.constantFrom(...'*./-_?#:abcz09 '.split(''), '/_ah/', '-dot-', 'Ä');
    const rule = fc.record(
      {
        url: fc.oneof(
          fc.string(),
          fc.array(urlChars, { maxLength: 30 }).map(a => a.join('')),
        ),
        module: fc.oneof(fc.constantFrom('api', 'default', 'Bad'), fc.string()),
        service: fc.string(),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(
        fc.array(fc.oneof(rule, fc.anything()), { maxLength: 5 }),
        fc.string(),
        fc.string(),
        (list, host, path) => {
          let set;
          try {
            set = compileDispatchRules(list as never);
          } catch (error) {
            expect(isXError(error, 'INVALID_DISPATCH_RULE')).toBe(true);
            return;
          }
          const hit = set.match(host, path);
          if (hit) expect(set.rules).toContain(hit);
        },
      ),
      { numRuns: 1500 },
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.string().map(s => `dispatch:\n  - url: "${s}"\n    module: a\n`),
        ),
        text => {
          try {
            parseDispatchYaml(text);
          } catch (error) {
            expect(isXError(error, 'INVALID_DISPATCH_RULE')).toBe(true);
          }
        },
      ),
      { numRuns: 1500 },
    );
  });
});
