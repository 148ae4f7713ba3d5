import { isXError } from '@x/resilience';
import { describe, expect, test } from 'vitest';
import {
  TOTO_ERROR_NAMES,
  WorkerRpcError,
  appCodeName,
  fromTotoError,
  fromWireError,
  isWorkerRpcError,
  toTotoError,
  toWireError,
} from './errors.js';

describe('errors', () => {
  test('WorkerRpcError is an XError with a stable code and derived retryability', () => {
    const e = new WorkerRpcError('UNAVAILABLE', 'gone', { endpoint: 'tcp://a:1' });
    expect(isXError(e, 'UNAVAILABLE')).toBe(true);
    expect(isWorkerRpcError(e)).toBe(true);
    expect(e).toMatchObject({
      name: 'WorkerRpcError',
      retryable: true,
      remote: false,
      endpoint: 'tcp://a:1',
    });
    expect(new WorkerRpcError('TIMEOUT', 't').retryable).toBe(false);
    expect(new WorkerRpcError('TIMEOUT', 't', { scope: 'attempt' }).retryable).toBe(true);
    expect(new WorkerRpcError('TIMEOUT', 't').scope).toBe('call');
    expect(new WorkerRpcError('NOT_FOUND', 'x').retryable).toBe(false);
    expect(isWorkerRpcError(new Error('x'))).toBe(false);
  });

  test('toto codes 1000–1010 map to names, other numbers to APP_<n>', () => {
    expect(Object.keys(TOTO_ERROR_NAMES)).toHaveLength(11);
    expect(appCodeName(1002)).toBe('MISSING_METHOD');
    expect(appCodeName(1010)).toBe('INVALID_USER_ID');
    expect(appCodeName(4242)).toBe('APP_4242');
    expect(fromTotoError({ code: 1008, value: 'bad hmac' })).toMatchObject({
      code: 'INVALID_HMAC',
      appCode: 1008,
      message: 'bad hmac',
      remote: true,
    });
    expect(fromTotoError('timeout').code).toBe('TIMEOUT');
    expect(fromTotoError({ weird: true }).code).toBe('INTERNAL');
    expect(toTotoError(new WorkerRpcError('NOT_FOUND', 'no'))).toEqual({ code: 1002, value: 'no' });
    expect(toTotoError(new Error('x'))).toEqual({ code: 1000, value: 'x' });
    expect(toTotoError({ code: 1006, value: 'exists' })).toEqual({ code: 1006, value: 'exists' });
  });

  test('wire shape: typed errors keep code, details and appCode; others are INTERNAL; malformed bodies are BAD_FRAME', () => {
    expect(
      toWireError(new WorkerRpcError('OUT_OF_STOCK', 'none', { details: { sku: 1 }, appCode: 7 })),
    ).toEqual({
      code: 'OUT_OF_STOCK',
      message: 'none',
      retryable: false,
      details: { sku: 1 },
      appCode: 7,
    });
    expect(toWireError(new TypeError('bad'))).toEqual({ code: 'INTERNAL', message: 'bad' });
    expect(toWireError('string thrown')).toEqual({ code: 'INTERNAL', message: 'string thrown' });
    expect(toWireError(new Error('with stack'), true).message).toContain('at ');
    const back = fromWireError(
      { code: 'OUT_OF_STOCK', message: 'none', details: { sku: 1 }, retryAfterMs: 50 },
      { method: 'm' },
    );
    expect(back).toMatchObject({
      code: 'OUT_OF_STOCK',
      remote: true,
      method: 'm',
      retryAfterMs: 50,
    });
    expect(fromWireError('nonsense').code).toBe('BAD_FRAME');
    expect(fromWireError({ code: 'has spaces!', message: 'x' }).code).toBe('INTERNAL');
    expect(fromWireError({ code: 'X', message: 'y'.repeat(10_000) }).message).toHaveLength(4096);
  });
});
