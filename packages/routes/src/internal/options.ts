import { duration } from '@x/resilience';
import { RouteConfigError } from '../errors.js';

/**
 * Rejects a non-object and unknown keys with `INVALID_OPTIONS`, so a misspelt option (the
 * original read `AMQP_URI` while its defaults defined `AMPQ_URI`) fails loudly instead of being
 * silently ignored.
 */
export function checkKeys(options: unknown, allowed: readonly string[], where: string): void {
  if (options === null || typeof options !== 'object' || Array.isArray(options))
    throw new RouteConfigError(`${where}: options must be an object`);
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key))
      throw new RouteConfigError(
        `${where}: unknown option '${key}' (expected one of ${allowed.join(', ')})`,
      );
  }
}

/** An integer >= min (or Infinity when allowed), else `INVALID_OPTIONS`. */
export function checkInt(value: number, min: number, name: string, allowInfinity = false): number {
  if ((allowInfinity && value === Infinity) || (Number.isInteger(value) && value >= min))
    return value;
  throw new RouteConfigError(`${name} must be an integer >= ${min}, got ${String(value)}`);
}

/**
 * A number of ms >= min by `@x/resilience`'s shared `duration` rule, else `INVALID_OPTIONS` naming
 * the field, the expected and the received value. With `allowInfinity`, `Infinity` or anything
 * above 2^31−1 ms means no limit (`Infinity`); without, such a value is refused.
 */
export function checkMs(value: unknown, min: number, name: string, allowInfinity = false): number {
  return duration(value, name, {
    min,
    allowInfinity,
    error: message => new RouteConfigError(message),
  });
}

/** An option given as one value or an array of them, as a new array (empty when undefined). */
export function listOption<T>(value: T | readonly T[] | undefined): T[] {
  return value === undefined
    ? []
    : Array.isArray(value)
      ? [...(value as readonly T[])]
      : [value as T];
}
