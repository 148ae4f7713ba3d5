import { RETRYABLE_STATUSES, XError, isRetryable, isXError } from '@x/resilience';
import { describe, expect, it } from 'vitest';
import {
  RequestAbortedError,
  ClosedError,
  ConnectError,
  ResponseDecodeError,
  HttpStatusError,
  InvalidCallError,
  NoHostError,
  PoolQueueFullError,
  ResponseTooLargeError,
  RestClientError,
  RetryBudgetDeniedError,
  SocketError,
  RequestTimeoutError,
  isRestClientError,
  type RestClientErrorCode,
} from './errors.js';
import { BroadcastError } from './broadcastError.js';
import { Response } from './response.js';

const info = { host: 'http://h:1', method: 'GET', path: '/x', idempotent: true, attempts: 2 };

describe('errors', () => {
  const response = new Response(
    'http://h:1',
    'GET',
    '/x',
    503,
    'Service Unavailable',
    { 'retry-after': '2' },
    { down: true },
    1,
    5,
    true,
  );
  const all: Array<[RestClientError, RestClientErrorCode]> = [
    [new HttpStatusError(response, info), 'HTTP_ERROR'],
    [new RequestTimeoutError('try', 100, info), 'TIMEOUT'],
    [new RequestAbortedError('bye', info), 'ABORTED'],
    [
      new ConnectError({
        ...info,
        cause: Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }),
      }),
      'CONNECT',
    ],
    [new SocketError(true, info), 'SOCKET'],
    [new NoHostError(), 'NO_HOST'],
    [
      new BroadcastError(
        {
          mode: 'all',
          hosts: [],
          responses: new Map(),
          failures: new Map([['h', new ClosedError()]]),
          complete: false,
          satisfied: false,
        },
        'broadcast failed',
      ),
      'BROADCAST',
    ],
    [new ResponseDecodeError(200, 'application/json', '{', info), 'DECODE'],
    [new ResponseTooLargeError(10, info), 'RESPONSE_TOO_LARGE'],
    [new RetryBudgetDeniedError(info), 'RETRY_BUDGET_EXHAUSTED'],
    [new InvalidCallError('bad path'), 'INVALID_REQUEST'],
    [new PoolQueueFullError(5, info), 'QUEUE_FULL'],
    [new ClosedError(info), 'CLOSED'],
  ];

  it.each(all.map(([error, code]) => [code, error] as const))(
    '%s: code, name, brand, XError',
    (code, error) => {
      expect(error.code).toBe(code);
      expect(error).toBeInstanceOf(RestClientError);
      expect(error).toBeInstanceOf(XError);
      expect(error.name).toBe(error.constructor.name);
      expect(isRestClientError(error)).toBe(true);
      expect(isRestClientError(error, code)).toBe(true);
      expect(isXError(error, code)).toBe(true);
      expect(error.message.length).toBeGreaterThan(3);
    },
  );

  it('the brand works on plain copies (another install) and rejects lookalikes', () => {
    expect(isRestClientError(new Error('x'))).toBe(false);
    expect(isRestClientError({ code: 'TIMEOUT' })).toBe(false);
    expect(isRestClientError(new XError('TIMEOUT', 'other package'))).toBe(false);
    expect(isRestClientError(null)).toBe(false);
    expect(isRestClientError(new RequestTimeoutError('total', 1), 'ABORTED')).toBe(false);
  });

  it('carries request details and the decoded body', () => {
    const error = new HttpStatusError(response, info);
    expect(error).toMatchObject({
      status: 503,
      reason: 'Service Unavailable',
      body: { down: true },
      retryAfterMs: 2000,
      host: 'http://h:1',
      attempts: 2,
    });
    expect(error.message).toBe('GET http://h:1/x answered 503 Service Unavailable');
    expect(new RequestTimeoutError('total', 5).scope).toBe('operation');
    expect(new RequestTimeoutError('connect', 5).scope).toBe('attempt');
    expect(
      new ConnectError({
        ...info,
        cause: Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }),
      }).message,
    ).toContain('ECONNREFUSED');
  });

  it('is understood by the @x/resilience classification (isRetryable)', () => {
    expect(isRetryable(new HttpStatusError(response, info))).toBe(true);
    expect(isRetryable(new HttpStatusError(response, { ...info, idempotent: false }))).toBe(false);
    expect(isRetryable(new RequestTimeoutError('total', 5))).toBe(false);
    expect(isRetryable(new RequestTimeoutError('try', 5), { retryOnTimeout: true })).toBe(true);
    expect(isRetryable(new RequestAbortedError('x'))).toBe(false);
    expect(RETRYABLE_STATUSES.has(503)).toBe(true);
  });
});
