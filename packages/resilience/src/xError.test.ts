import { describe, expect, it } from 'vitest';
import { XError, isXError, withoutStack } from './xError.js';
import { TimeoutError } from './errors.js';

describe('XError', () => {
  it('carries code, name and cause', () => {
    const cause = new Error('root');
    const error = new XError('SOME_CODE', 'something failed', { cause });
    expect(error).toBeInstanceOf(Error);
    expect(error.code).toBe('SOME_CODE');
    expect(error.name).toBe('XError');
    expect(error.message).toBe('something failed');
    expect(error.cause).toBe(cause);
    expect('cause' in new XError('X', 'no cause')).toBe(false);
  });

  it('names subclasses after themselves', () => {
    class MyError extends XError {}
    expect(new MyError('MINE', 'm').name).toBe('MyError');
  });
});

describe('isXError', () => {
  it('recognises XErrors, optionally by code', () => {
    const error = new TimeoutError(100);
    expect(isXError(error)).toBe(true);
    expect(isXError(error, 'TIMEOUT')).toBe(true);
    expect(isXError(error, 'CIRCUIT_OPEN')).toBe(false);
  });

  it('works across a duplicate install (a foreign class with the same global brand)', () => {
    // Another copy of the package defines its own class; only the Symbol.for brand is shared.
    class ForeignXError extends Error {
      constructor(readonly code: string) {
        super('from another copy');
      }
    }
    Object.defineProperty(ForeignXError.prototype, Symbol.for('@x/error'), { value: true });
    const foreign = new ForeignXError('TIMEOUT');
    expect(foreign instanceof XError).toBe(false);
    expect(isXError(foreign)).toBe(true);
    expect(isXError(foreign, 'TIMEOUT')).toBe(true);
    expect(isXError(foreign, 'ABORTED')).toBe(false);
  });

  it('rejects plain errors and non-errors', () => {
    expect(isXError(new Error('plain'))).toBe(false);
    expect(isXError(Object.assign(new Error('coded'), { code: 'TIMEOUT' }))).toBe(false);
    expect(isXError({ code: 'TIMEOUT' })).toBe(false);
    expect(isXError({ [Symbol.for('@x/error')]: 'yes' })).toBe(false);
    expect(isXError(null)).toBe(false);
    expect(isXError(undefined)).toBe(false);
    expect(isXError('TIMEOUT')).toBe(false);
  });
});

describe('withoutStack', () => {
  it('builds the error without stack frames and restores the limit', () => {
    const before = Error.stackTraceLimit;
    const error = withoutStack(() => new XError('FAST', 'fast fail'));
    expect(error.code).toBe('FAST');
    expect(error.stack ?? '').not.toMatch(/\n\s+at /);
    expect(Error.stackTraceLimit).toBe(before);
    expect(new XError('SLOW', 'with stack').stack).toMatch(/\n\s+at /);
  });

  it('restores the limit when the factory throws', () => {
    const before = Error.stackTraceLimit;
    expect(() =>
      withoutStack(() => {
        throw new RangeError('nope');
      }),
    ).toThrow(RangeError);
    expect(Error.stackTraceLimit).toBe(before);
  });
});
