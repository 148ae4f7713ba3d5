import fc from 'fast-check';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { isRestClientError } from '../errors.js';
import { decodeText, decompress, isJsonType } from './decode.js';

const source = { info: () => ({ host: 'http://h:1', method: 'GET', path: '/x' }) };

describe('decode', () => {
  it('recognises JSON content types', () => {
    for (const type of [
      'application/json',
      'application/json; charset=utf-8',
      'application/problem+json',
      'text/x-json',
      'APPLICATION/JSON ; q=1',
    ]) {
      expect(isJsonType(type), type).toBe(true);
    }
    for (const type of [undefined, 'text/plain', 'application/jsonp', 'text/html', ''])
      expect(isJsonType(type), String(type)).toBe(false);
  });

  it('decodes by mode and content type', () => {
    expect(decodeText('{"a":1}', 'application/json', 'auto', 200, source)).toEqual({ a: 1 });
    expect(decodeText('{"a":1}', 'text/plain', 'auto', 200, source)).toBe('{"a":1}');
    expect(decodeText('{"a":1}', 'text/plain', 'json', 200, source)).toEqual({ a: 1 });
    expect(decodeText('{"a":1}', 'application/json', 'text', 200, source)).toBe('{"a":1}');
    expect(decodeText('', 'application/json', 'auto', 204, source)).toBeUndefined();
    expect(decodeText('oops', 'application/json', 'auto', 500, source)).toBe('oops');
  });

  it('malformed JSON in a 2xx is DECODE with a snippet of at most 200 characters', () => {
    const text = `{"a": ${'x'.repeat(500)}`;
    try {
      decodeText(text, 'application/json', 'auto', 200, source);
      expect.unreachable();
    } catch (error) {
      expect(error).toMatchObject({
        code: 'DECODE',
        status: 200,
        contentType: 'application/json',
        host: 'http://h:1',
        path: '/x',
      });
      expect((error as { snippet: string }).snippet).toBe(text.slice(0, 200));
    }
  });

  it('decompresses gzip and reports bad data or bombs with typed errors', () => {
    const data = gzipSync('hello');
    expect(Buffer.from(decompress(data, 'gzip', 100, 200, 'text/plain', {})).toString()).toBe(
      'hello',
    );
    expect(() => decompress(Buffer.from('not gzip'), 'gzip', 100, 200, undefined, {})).toThrow(
      expect.objectContaining({ code: 'DECODE' }),
    );
    expect(() => decompress(gzipSync('x'.repeat(1000)), 'gzip', 100, 200, undefined, {})).toThrow(
      expect.objectContaining({ code: 'RESPONSE_TOO_LARGE' }),
    );
    expect(() => decompress(data, 'zstd-unknown', 100, 200, undefined, {})).toThrow(
      expect.objectContaining({ code: 'DECODE' }),
    );
  });

  it('property: any body either decodes or fails with DECODE, never anything else', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.json(),
          fc.jsonValue().map(v => JSON.stringify(v)),
          fc.uint8Array().map(b => Buffer.from(b).toString('latin1')),
        ),
        fc.constantFrom('application/json', 'text/plain', undefined, 'application/x+json'),
        fc.constantFrom('auto', 'json', 'text') as fc.Arbitrary<'auto' | 'json' | 'text'>,
        fc.integer({ min: 100, max: 599 }),
        (text, type, mode, status) => {
          try {
            const value = decodeText(text, type, mode, status, source);
            if (mode === 'text') return value === text;
            return true;
          } catch (error) {
            return isRestClientError(error, 'DECODE') && status >= 200 && status < 300;
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('property: any bytes with any content-encoding give bytes or a typed error', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.constantFrom('gzip', 'deflate', 'br', 'identity', 'gzip, br', 'x-gzip', 'weird'),
        (bytes, encoding) => {
          try {
            decompress(bytes, encoding, 10_000, 200, undefined, {});
            return true;
          } catch (error) {
            return (
              isRestClientError(error, 'DECODE') || isRestClientError(error, 'RESPONSE_TOO_LARGE')
            );
          }
        },
      ),
      { numRuns: 1000 },
    );
  });
});
