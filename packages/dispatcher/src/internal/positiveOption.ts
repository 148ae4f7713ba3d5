import { InvalidConfigError } from '../errors.js';
import { durationOption } from './durationOption.js';

/** A positive number option (an integer with `integer`), `fallback` when absent; `INVALID_CONFIG` naming it. */
export function positiveOption(
  name: string,
  value: unknown,
  fallback: number,
  integer = false,
): number {
  if (value === undefined) return fallback;
  if (
    typeof value !== 'number' ||
    !(value > 0) ||
    (integer && !Number.isInteger(value)) ||
    value > Number.MAX_SAFE_INTEGER
  )
    throw new InvalidConfigError(
      `${name} must be a ${integer ? 'positive integer' : 'positive number'}, got ${String(value)}`,
    );
  return value;
}

/** A timer or interval option: `> 0` and at most 2^31−1 ms (`INVALID_CONFIG` naming the field). */
export function timerOption(value: unknown, field: string): number {
  return durationOption(value, field, { exclusiveMin: true, allowInfinity: false });
}
