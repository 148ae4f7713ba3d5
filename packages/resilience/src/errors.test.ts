import { describe, expect, it } from 'vitest';
import {
  AbortedError,
  BulkheadFullError,
  CircuitOpenError,
  HttpError,
  NoEndpointError,
  RateLimitedError,
  ResilienceError,
  RetryBudgetExhaustedError,
  TimeoutError,
} from './errors.js';
import { isXError, XError } from './xError.js';

describe('resilience errors', () => {
  it('have stable string codes', () => {
    const cases: Array<[ResilienceError, string]> = [
      [new TimeoutError(100), 'TIMEOUT'],
      [new CircuitOpenError('svc', Date.now() + 5), 'CIRCUIT_OPEN'],
      [new BulkheadFullError(2, 1), 'BULKHEAD_FULL'],
      [new RateLimitedError(10), 'RATE_LIMITED'],
      [new RetryBudgetExhaustedError(), 'RETRY_BUDGET_EXHAUSTED'],
      [new NoEndpointError(), 'NO_ENDPOINT'],
      [new AbortedError(), 'ABORTED'],
      [new HttpError(503, 'GET', 'http://h/x', {}, 'busy', 1000, true), 'HTTP_ERROR'],
    ];
    for (const [error, code] of cases) {
      expect(error.code).toBe(code);
      expect(error).toBeInstanceOf(ResilienceError);
      expect(error).toBeInstanceOf(XError);
      expect(isXError(error, code)).toBe(true);
      expect(error.name).toBe(error.constructor.name);
    }
  });

  it('carry their details', () => {
    const attempt = new TimeoutError(250, 'attempt');
    expect(attempt.timeoutMs).toBe(250);
    expect(attempt.scope).toBe('attempt');
    expect(attempt.message).toBe('attempt timed out after 250 ms');
    expect(new TimeoutError(10).scope).toBe('operation');

    const retryAt = Date.now() + 1500;
    const open = new CircuitOpenError('api:80', retryAt);
    expect(open.key).toBe('api:80');
    expect(open.retryAt).toBe(retryAt);
    expect(open.retryAfterMs).toBeGreaterThan(1400);
    expect(open.retryAfterMs).toBeLessThanOrEqual(1500);
    expect(open.isolated).toBe(false);
    expect(new CircuitOpenError('k', Date.now() - 10).retryAfterMs).toBe(0); // due: never negative
    const isolated = new CircuitOpenError('k', 0, true);
    expect(isolated.message).toContain('isolated');
    expect(isolated.retryAfterMs).toBe(0);

    const full = new BulkheadFullError(2, 3, 'host:1');
    expect([full.limit, full.queue, full.key]).toEqual([2, 3, 'host:1']);
    expect(full.message).toBe('bulkhead host:1 full (limit 2, queue 3)');

    expect(new RateLimitedError(12.2).message).toBe('rate limited, next token in 13 ms');
    const cause = new Error('last failure');
    expect(new RetryBudgetExhaustedError({ cause }).cause).toBe(cause);

    const http = new HttpError(
      429,
      'POST',
      'http://h/x',
      { 'retry-after': '2' },
      'slow down',
      2000,
      false,
    );
    expect([
      http.status,
      http.method,
      http.url,
      http.body,
      http.retryAfterMs,
      http.idempotent,
    ]).toEqual([429, 'POST', 'http://h/x', 'slow down', 2000, false]);
    expect(http.message).toBe('POST http://h/x answered 429');
  });
});
