import { describe, expect, it } from 'vitest';
import { responseHeaders, responseJson, responseText, toFetchResponse } from './responseTuple.js';

describe('response tuple helpers', () => {
  const tuple = {
    status: 201,
    reason: 'Created',
    headers: [
      ['Set-Cookie', 'a=1'],
      ['content-type', 'application/json'],
      ['set-cookie', 'b=2'],
    ] as Array<[string, string]>,
    body: new TextEncoder().encode('{"ok":true}'),
  };
  it('reads text, JSON and repeated headers', () => {
    expect(responseText(tuple)).toBe('{"ok":true}');
    expect(responseJson(tuple)).toEqual({ ok: true });
    expect(responseHeaders(tuple, 'SET-COOKIE')).toEqual(['a=1', 'b=2']);
    expect(() => responseJson({ ...tuple, body: new Uint8Array([123]) })).toThrow(SyntaxError);
  });
  it('converts to a fetch Response', async () => {
    const response = toFetchResponse(tuple);
    expect([response.status, response.statusText]).toEqual([201, 'Created']);
    expect(response.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
    expect(await response.json()).toEqual({ ok: true });
    expect(toFetchResponse({ ...tuple, status: 204 }).body).toBeNull();
  });
});
