import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidCallError, isRestClientError } from '../errors.js';
import { buildPath, encodeQuery } from './path.js';

describe('buildPath', () => {
  it('keeps valid origin-form paths and appends the query', () => {
    expect(buildPath('/a/b', undefined)).toBe('/a/b');
    expect(buildPath('/a?x=1', { y: 2 })).toBe('/a?x=1&y=2');
    expect(buildPath('/a?', { y: 2 })).toBe('/a?y=2');
    expect(buildPath('/a', { s: 'a b&c', n: [1, 2], b: false, skip: null, big: 10n })).toBe(
      '/a?s=a+b%26c&n=1&n=2&b=false&big=10',
    );
    expect(buildPath('/a', {})).toBe('/a');
    expect(buildPath('/a/..b/.c/%2Fx', undefined)).toBe('/a/..b/.c/%2Fx');
    expect(buildPath('/a?next=/../x', undefined)).toBe('/a?next=/../x'); // dots in the query do not move the path
  });

  it.each([
    ['http://other/x', /absolute URL/],
    ['HTTPS://other', /absolute URL/],
    ['//other/x', /another host/],
    ['x/y', /start with "\/"/],
    ['', /start with/],
    ['/a/../b', /dot segment/],
    ['/a/./b', /dot segment/],
    ['/..', /dot segment/],
    ['/%2e%2E/x', /dot segment/],
    ['/.%2e/x', /dot segment/],
    ['/a b', /percent-encoded/],
    ['/a\r\nHost: evil', /percent-encoded/],
    ['/a\\b', /backslash/],
    ['/a#b', /"#"/],
    ['/é', /percent-encoded/],
  ])('rejects %j', (path, message) => {
    expect(() => buildPath(path, undefined)).toThrow(InvalidCallError);
    expect(() => buildPath(path, undefined)).toThrow(message);
  });

  it('rejects non-string paths and bad queries with typed errors', () => {
    for (const path of [undefined, null, 1, {}, ['/a']])
      expect(() => buildPath(path, undefined)).toThrow(InvalidCallError);
    expect(() => buildPath('/x'.repeat(9000), undefined)).toThrow(/longer than/);
    expect(() => encodeQuery([] as never)).toThrow(InvalidCallError);
    expect(() => encodeQuery({ a: {} as never })).toThrow(/query parameter "a"/);
    expect(() => encodeQuery({ a: [Symbol('x')] as never })).toThrow(InvalidCallError);
  });

  it('property: any input either gives a path that stays on the host or a typed INVALID_REQUEST', () => {
    const segment = fc.oneof(
      fc.string(),
      fc.constantFrom('..', '.', '%2e%2e', '%2E.', 'a', 'http:', ''),
    );
    const path = fc.oneof(
      fc.string(),
      fc.array(segment, { maxLength: 6 }).map(parts => `/${parts.join('/')}`),
      fc
        .tuple(fc.constantFrom('http://', '//', 'https:', 'mailto:', '/'), fc.string())
        .map(([a, b]) => a + b),
      fc.anything(),
    );
    const query = fc.option(
      fc.dictionary(
        fc.string(),
        fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.array(fc.string()), fc.anything()),
      ),
      { nil: undefined },
    );
    fc.assert(
      fc.property(path, query, (p, q) => {
        let result: string;
        try {
          result = buildPath(p, q as never);
        } catch (error) {
          return isRestClientError(error, 'INVALID_REQUEST');
        }
        const pathPart = result.split('?')[0]!;
        return (
          result.startsWith('/') &&
          !result.startsWith('//') &&
          /^[\x21-\x7e]*$/.test(result) &&
          !result.includes('#') &&
          !pathPart
            .split('/')
            .some(s => ['.', '..'].includes(s.toLowerCase().replaceAll('%2e', '.'))) &&
          new URL(result, 'http://h.invalid').host === 'h.invalid'
        );
      }),
      { numRuns: 2000 },
    );
  });
});
