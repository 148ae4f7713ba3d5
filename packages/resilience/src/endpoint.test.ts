import { describe, expect, it } from 'vitest';
import { toEndpoint } from './endpoint.js';

describe('toEndpoint', () => {
  it('parses URLs, host:port and [protocol, netloc] pairs', () => {
    expect(toEndpoint('http://10.0.0.1:8080')).toEqual({
      protocol: 'http:',
      netloc: '10.0.0.1:8080',
      origin: 'http://10.0.0.1:8080',
    });
    expect(toEndpoint('HTTPS://API.example.com/')).toEqual({
      protocol: 'https:',
      netloc: 'api.example.com',
      origin: 'https://api.example.com',
    });
    expect(toEndpoint('db:5432')).toEqual({
      protocol: 'http:',
      netloc: 'db:5432',
      origin: 'http://db:5432',
    });
    expect(toEndpoint('localhost')).toEqual({
      protocol: 'http:',
      netloc: 'localhost',
      origin: 'http://localhost',
    });
    expect(toEndpoint('[::1]:80')).toEqual({
      protocol: 'http:',
      netloc: '[::1]:80',
      origin: 'http://[::1]:80',
    });
    expect(toEndpoint(['https', 'h:443'])).toEqual({
      protocol: 'https:',
      netloc: 'h:443',
      origin: 'https://h:443',
    });
    expect(toEndpoint(['http:', 'H:1'])).toEqual({
      protocol: 'http:',
      netloc: 'h:1',
      origin: 'http://h:1',
    });
  });

  it('returns an Endpoint object as is', () => {
    const e = { protocol: 'http:', netloc: 'x:1', origin: 'http://x:1' };
    expect(toEndpoint(e)).toBe(e);
  });

  it.each([
    ['a URL with a path', 'http://h:1/api'],
    ['a URL with a query', 'http://h:1?x=1'],
    ['a non-numeric port', 'h:abc'],
    ['whitespace', ' h:1'],
    ['an empty string', ''],
    ['credentials', 'user:pw@h:1'],
    ['a pair with a bad netloc', ['http', 'h/1']],
    ['a pair with an empty netloc', ['http', '']],
    ['a one-element array', ['http']],
    ['a pair of non-strings', [1, 2]],
    ['a pair with an empty protocol', ['', 'h:1']],
    ['undefined', undefined],
    ['null', null],
    ['a number', 42],
    ['an object without the endpoint fields', {}],
  ])('rejects %s with TypeError', (_name, value) => {
    expect(() => toEndpoint(value as never)).toThrow(TypeError);
  });
});
