import { describe, expect, it } from 'vitest';
import { isRestClientError, RequestTimeoutError } from '../errors.js';
import { toRestClientError } from './errorMapping.js';

const info = { host: 'http://h:1', method: 'GET', path: '/x', idempotent: true, attempts: 1 };
const context = { connectTimeoutMs: 1234, maxResponseSize: 99 };
const err = (code: string, extra: object = {}) => Object.assign(new Error(code), { code }, extra);

describe('toRestClientError', () => {
  it.each([
    ['UND_ERR_CONNECT_TIMEOUT', 'TIMEOUT', { phase: 'connect', timeoutMs: 1234, scope: 'attempt' }],
    ['UND_ERR_HEADERS_TIMEOUT', 'TIMEOUT', { phase: 'try' }],
    ['UND_ERR_BODY_TIMEOUT', 'TIMEOUT', { phase: 'try' }],
    ['UND_ERR_RES_EXCEEDED_MAX_SIZE', 'RESPONSE_TOO_LARGE', { limit: 99 }],
    ['UND_ERR_ABORTED', 'ABORTED', {}],
    ['UND_ERR_DESTROYED', 'CLOSED', {}],
    ['UND_ERR_CLOSED', 'CLOSED', {}],
    ['UND_ERR_INVALID_ARG', 'INVALID_REQUEST', {}],
    ['ECONNREFUSED', 'CONNECT', {}],
    ['ENOTFOUND', 'CONNECT', {}],
    ['EHOSTUNREACH', 'CONNECT', {}],
    ['ERR_TLS_CERT_ALTNAME_INVALID', 'CONNECT', {}],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', 'CONNECT', {}],
    ['HPE_INVALID_CONSTANT', 'SOCKET', { stale: false }],
    ['ECONNRESET', 'SOCKET', { stale: true }],
    ['EPIPE', 'SOCKET', { stale: true }],
  ])('%s → %s', (code, expected, fields) => {
    const mapped = toRestClientError(err(code), info, false, context);
    expect(isRestClientError(mapped, expected as never)).toBe(true);
    expect(mapped).toMatchObject({ ...fields, host: 'http://h:1', method: 'GET', path: '/x' });
    expect((mapped.cause as { code: string }).code).toBe(code);
  });

  it('a socket closed by the peer is stale only on a connection that had already read a response', () => {
    expect(
      toRestClientError(
        err('UND_ERR_SOCKET', { socket: { bytesRead: 120 } }),
        info,
        false,
        context,
      ),
    ).toMatchObject({ code: 'SOCKET', stale: true });
    expect(
      toRestClientError(err('UND_ERR_SOCKET', { socket: { bytesRead: 0 } }), info, false, context),
    ).toMatchObject({ code: 'SOCKET', stale: false });
    expect(toRestClientError(err('ECONNRESET'), info, true, context)).toMatchObject({
      code: 'SOCKET',
      stale: false,
    }); // after headers
  });

  it('keeps our own errors and maps DOM-style abort and timeout errors', () => {
    const own = new RequestTimeoutError('total', 5, info);
    expect(toRestClientError(own, info, false, context)).toBe(own);
    expect(
      toRestClientError(
        Object.assign(new Error('t'), { name: 'TimeoutError' }),
        info,
        false,
        context,
      ),
    ).toMatchObject({ code: 'TIMEOUT', phase: 'total' });
    expect(
      toRestClientError(
        Object.assign(new Error('a'), { name: 'AbortError' }),
        info,
        false,
        context,
      ),
    ).toMatchObject({ code: 'ABORTED' });
    expect(toRestClientError('weird', info, false, context)).toMatchObject({ code: 'SOCKET' });
    expect(toRestClientError(undefined, info, false, context)).toMatchObject({ code: 'SOCKET' });
  });
});
