import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isHostLabel, parseHostHeader } from './hostHeader.js';

describe('parseHostHeader', () => {
  const base = 'example.com';
  it.each([
    [undefined, { kind: 'none' }],
    ['', { kind: 'none' }],
    ['example.com', { kind: 'base', hostname: 'example.com', port: undefined }],
    ['Example.COM:8080', { kind: 'base', hostname: 'example.com', port: 8080 }],
    ['example.com.', { kind: 'base', hostname: 'example.com', port: undefined }],
    [
      'api.example.com',
      { kind: 'prefix', hostname: 'api.example.com', port: undefined, labels: ['api'] },
    ],
    [
      'v2.api.example.com:443',
      { kind: 'prefix', hostname: 'v2.api.example.com', port: 443, labels: ['v2', 'api'] },
    ],
    [
      '1.v2.api.example.com',
      {
        kind: 'prefix',
        hostname: '1.v2.api.example.com',
        port: undefined,
        labels: ['1', 'v2', 'api'],
      },
    ],
    [
      '1-dot-v2-dot-api.example.com',
      {
        kind: 'prefix',
        hostname: '1-dot-v2-dot-api.example.com',
        port: undefined,
        labels: ['1', 'v2', 'api'],
      },
    ],
    [
      'v2-dot-api.example.com',
      {
        kind: 'prefix',
        hostname: 'v2-dot-api.example.com',
        port: undefined,
        labels: ['v2', 'api'],
      },
    ],
    ['other.org', { kind: 'other', hostname: 'other.org', port: undefined }],
    ['notexample.com', { kind: 'other', hostname: 'notexample.com', port: undefined }],
    ['127.0.0.1:9000', { kind: 'other', hostname: '127.0.0.1', port: 9000 }],
    ['[::1]:8080', { kind: 'other', hostname: '[::1]', port: 8080 }],
  ])('%s', (value, expected) => {
    expect(parseHostHeader(value, base)).toEqual(expected);
  });

  it.each([
    ['a.b.c.d.example.com', /too many labels/],
    ['api.example.com:99999', /bad port/],
    ['api.example.com:', /bad port/],
    ['api.example.com:8a', /bad port/],
    ['bad host.example.com', /bad host name/],
    ['-x.example.com', /bad label/],
    ['[::1', /unterminated/],
    ['[zz]', /bad IPv6/],
    ['[::1]x', /junk/],
    ['x'.repeat(400), /too long/],
  ])('%s is invalid', (value, reason) => {
    const parsed = parseHostHeader(value, base);
    expect(parsed.kind).toBe('invalid');
    expect(parsed.kind === 'invalid' && parsed.reason).toMatch(reason);
  });

  it('never throws, and prefix labels are always valid host labels (property)', () => {
    const hostChars = fc.constantFrom(...'abcz019-._:[]'.split(''), 'Ä', ' ', '\u0000', '-dot-');
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.array(hostChars, { maxLength: 40 }).map(a => a.join('') + '.example.com'),
        ),
        value => {
          const parsed = parseHostHeader(value, base);
          expect(['none', 'base', 'prefix', 'other', 'invalid']).toContain(parsed.kind);
          if (parsed.kind === 'prefix') {
            expect(parsed.labels.length).toBeGreaterThanOrEqual(1);
            expect(parsed.labels.length).toBeLessThanOrEqual(3);
            for (const label of parsed.labels) expect(isHostLabel(label)).toBe(true);
            expect(parsed.hostname.endsWith('.example.com')).toBe(true);
          }
          if (parsed.kind !== 'none' && parsed.kind !== 'invalid' && parsed.port !== undefined) {
            expect(parsed.port).toBeGreaterThanOrEqual(0);
            expect(parsed.port).toBeLessThanOrEqual(65535);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('isHostLabel', () => {
    expect(isHostLabel('api')).toBe(true);
    expect(isHostLabel('v-1')).toBe(true);
    expect(isHostLabel('a-dot-b')).toBe(false);
    expect(isHostLabel('-a')).toBe(false);
    expect(isHostLabel('a'.repeat(64))).toBe(false);
    expect(isHostLabel('')).toBe(false);
  });
});
