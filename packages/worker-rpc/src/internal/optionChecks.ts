import { durationOption } from './durationOption.js';

/** Default deadline of a call in ms. */
export const DEFAULT_TIMEOUT_MS = 10_000;

/**
 * A deadline in ms by `@x/resilience`'s `duration` rule (above 2^31−1 ms: none), plus toto's
 * "negative means never"; a string, `NaN` or 0 is `INVALID_ARGUMENT` naming the field.
 */
export function validateTimeout(value: unknown, name: string): number {
  if (typeof value === 'number' && value < 0) return Infinity;
  return durationOption(value, name, { exclusiveMin: true });
}

const MIME =
  /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+(\s*;\s*[a-z0-9!#$&^_.+-]+=("[^"\r\n]*"|[a-z0-9!#$&^_.+-]+))*$/i;

/** A MIME type such as `application/json` (with parameters), or a RangeError naming `name`. */
export function mimeType(value: unknown, name: string): string {
  if (typeof value !== 'string' || value.length > 255 || !MIME.test(value))
    throw new RangeError(
      `${name} must be a MIME type such as 'application/json', got ${JSON.stringify(value)}`,
    );
  return value;
}

/** An integer >= 1, or a RangeError naming `name`. */
export function positiveInt(value: number, name: string): number {
  if (!(Number.isInteger(value) && value >= 1))
    throw new RangeError(`${name} must be an integer >= 1, got ${value}`);
  return value;
}

/** An integer >= 0, or a RangeError naming `name`. */
export function nonNegativeInt(value: number, name: string): number {
  if (!(Number.isInteger(value) && value >= 0))
    throw new RangeError(`${name} must be an integer >= 0, got ${value}`);
  return value;
}
