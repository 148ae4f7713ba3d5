import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { describeValue } from './describeValue.js';
import { duration, MAX_TIMER_MS } from './duration.js';
import { InvalidArgumentError } from './errors.js';
import { isXError } from './xError.js';

describe('duration', () => {
  it('accepts numbers in range and reads anything above 2^31-1 ms as Infinity', () => {
    expect(duration(0, 'x')).toBe(0);
    expect(duration(300, 'x')).toBe(300);
    expect(duration(MAX_TIMER_MS, 'x')).toBe(MAX_TIMER_MS);
    expect(duration(MAX_TIMER_MS + 1, 'x')).toBe(Infinity);
    expect(duration(3e9, 'x')).toBe(Infinity);
    expect(duration(1e12, 'x')).toBe(Infinity);
    expect(duration(Infinity, 'x')).toBe(Infinity);
  });

  it('rejects a string, NaN and a negative with INVALID_ARGUMENT naming field, expected and received', () => {
    const error = (() => {
      try {
        duration('300', 'timeout');
      } catch (e) {
        return e;
      }
      return undefined;
    })() as InvalidArgumentError;
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect(isXError(error, 'INVALID_ARGUMENT')).toBe(true);
    expect(error.field).toBe('timeout');
    expect(error.message).toMatch(/^timeout: expected a number of ms >= 0/);
    expect(error.message).toContain('received "300"');
    expect(() => duration(Number.NaN, 'timeout')).toThrow(/timeout: .* received NaN/);
    expect(() => duration(-1, 'timeout')).toThrow(/timeout: .* received -1/);
    expect(() => duration(0, 'timeout', { exclusiveMin: true })).toThrow(/> 0.* received 0/);
  });

  it('refuses "no limit" where the field cannot take it', () => {
    expect(() => duration(Infinity, 'interval', { allowInfinity: false })).toThrow(
      /interval: expected .*<= 2147483647, received Infinity/,
    );
    expect(() => duration(3e9, 'interval', { allowInfinity: false })).toThrow(InvalidArgumentError);
  });

  it('throws the error a package asks for', () => {
    class MyError extends Error {}
    expect(() => duration('x', 'f', { error: m => new MyError(m) })).toThrow(MyError);
  });

  it('property: returns a number in [min, MAX] or Infinity, or throws INVALID_ARGUMENT; never anything else', () => {
    fc.assert(
      fc.property(
        fc.anything(),
        fc.boolean(),
        fc.boolean(),
        (value, exclusiveMin, allowInfinity) => {
          let result: number;
          try {
            result = duration(value, 'f', { exclusiveMin, allowInfinity });
          } catch (e) {
            expect(isXError(e, 'INVALID_ARGUMENT')).toBe(true);
            expect((e as Error).message.startsWith('f: expected ')).toBe(true);
            return;
          }
          expect(typeof value).toBe('number');
          expect(result === Infinity || (result >= 0 && result <= MAX_TIMER_MS)).toBe(true);
          if (!allowInfinity) expect(result).toBeLessThanOrEqual(MAX_TIMER_MS);
        },
      ),
    );
    fc.assert(
      fc.property(fc.double(), value => {
        const ok = value >= 0;
        if (ok) expect(duration(value, 'f')).toBe(value > MAX_TIMER_MS ? Infinity : value);
        else expect(() => duration(value, 'f')).toThrow(InvalidArgumentError);
      }),
    );
  });
});

describe('describeValue', () => {
  it('renders what was received without calling user code', () => {
    const hostile = {
      toString() {
        throw new Error('boom');
      },
    };
    expect(
      [
        'nope',
        'x'.repeat(70),
        300,
        Number.NaN,
        true,
        10n,
        null,
        undefined,
        [1],
        hostile,
        () => 1,
        Symbol('s'),
      ].map(describeValue),
    ).toEqual([
      '"nope"',
      `"${'x'.repeat(60)}…"`,
      '300',
      'NaN',
      'true (a boolean)',
      '10 (a bigint)',
      'null',
      'undefined',
      'an array',
      'an object',
      'a function',
      'a symbol',
    ]);
  });
});
