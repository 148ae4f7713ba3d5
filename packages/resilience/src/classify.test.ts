import { describe, expect, it } from 'vitest';
import {
  errorCode,
  isLocalRejection,
  isNotSentError,
  isRetryable,
  isServiceFailure,
  RETRYABLE_STATUSES,
} from './classify.js';
import {
  AbortedError,
  BulkheadFullError,
  ConnectionError,
  CircuitOpenError,
  HttpError,
  NoEndpointError,
  RateLimitedError,
  RetryBudgetExhaustedError,
  TimeoutError,
} from './errors.js';

const http = (status: number, idempotent = true) =>
  new HttpError(status, 'GET', 'http://h/', {}, '', undefined, idempotent);
const coded = (code: string) => Object.assign(new Error(code), { code });

describe('classify', () => {
  it('errorCode reads the code of an error or of its cause chain', () => {
    expect(errorCode(coded('ECONNREFUSED'))).toBe('ECONNREFUSED');
    expect(errorCode(new Error('fetch failed', { cause: coded('ENOTFOUND') }))).toBe('ENOTFOUND');
    expect(errorCode(new TimeoutError(1))).toBe('TIMEOUT');
    expect(errorCode(new Error('plain'))).toBeUndefined();
    expect(errorCode(undefined)).toBeUndefined();
    expect(errorCode('ECONNREFUSED')).toBeUndefined();
  });

  it('local rejections', () => {
    for (const e of [
      new CircuitOpenError('k', 0),
      new BulkheadFullError(1, 0),
      new RateLimitedError(1),
      new RetryBudgetExhaustedError(),
      new AbortedError(),
      new NoEndpointError(),
    ]) {
      expect(isLocalRejection(e)).toBe(true);
      expect(isServiceFailure(e)).toBe(false);
      expect(isRetryable(e)).toBe(false);
    }
    expect(isLocalRejection(new TimeoutError(1))).toBe(false);
    expect(isLocalRejection(coded('CIRCUIT_OPEN'))).toBe(false); // not an XError
  });

  it('service failures: everything but local rejections and request errors', () => {
    expect(isServiceFailure(new Error('boom'))).toBe(true);
    expect(isServiceFailure(new TimeoutError(1))).toBe(true);
    expect(isServiceFailure(http(500))).toBe(true);
    expect(isServiceFailure(http(503))).toBe(true);
    expect(isServiceFailure(http(408))).toBe(true);
    expect(isServiceFailure(http(429))).toBe(true);
    expect(isServiceFailure(http(400))).toBe(false);
    expect(isServiceFailure(http(404))).toBe(false);
  });

  it('never-sent errors', () => {
    for (const code of [
      'ECONNREFUSED',
      'ENOTFOUND',
      'EAI_AGAIN',
      'EHOSTUNREACH',
      'ENETUNREACH',
      'UND_ERR_CONNECT_TIMEOUT',
    ]) {
      expect(isNotSentError(coded(code))).toBe(true);
    }
    expect(isNotSentError(coded('ECONNRESET'))).toBe(false);
    expect(isNotSentError(new Error('x'))).toBe(false);
  });

  it('retryable: statuses, timeouts, idempotency', () => {
    expect([...RETRYABLE_STATUSES].sort()).toEqual([408, 429, 500, 502, 503, 504]);
    expect(isRetryable(http(503))).toBe(true);
    expect(isRetryable(http(501))).toBe(false);
    expect(isRetryable(http(404))).toBe(false);
    expect(isRetryable(http(503, false))).toBe(false);
    expect(isRetryable(new TimeoutError(1, 'attempt'))).toBe(false);
    expect(isRetryable(new TimeoutError(1, 'attempt'), { retryOnTimeout: true })).toBe(true);
    expect(isRetryable(new TimeoutError(1, 'operation'), { retryOnTimeout: true })).toBe(false);
    expect(isRetryable(new Error('x'))).toBe(true);
    expect(isRetryable(new Error('x'), { idempotent: false })).toBe(false);
    expect(isRetryable(coded('ECONNREFUSED'), { idempotent: false })).toBe(true);
    expect(isRetryable(http(503), { idempotent: false })).toBe(false);
    const broken = (idempotent: boolean, code: string) =>
      new ConnectionError('POST', 'http://h/', idempotent, { cause: coded(code) });
    expect(isRetryable(broken(false, 'ECONNRESET'))).toBe(false);
    expect(isRetryable(broken(true, 'ECONNRESET'))).toBe(true);
    expect(isRetryable(broken(false, 'ECONNREFUSED'))).toBe(true);
  });
});

describe('isNotSentError through wrappers', () => {
  it('finds a never-sent code below a wrapper that has its own code', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    const wrapped = Object.assign(new Error('request failed', { cause: refused }), {
      code: 'CONNECT',
    });
    expect(isNotSentError(wrapped)).toBe(true);
    expect(isNotSentError(Object.assign(new Error('x'), { code: 'ECONNRESET' }))).toBe(false);
  });
});
