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

/** A finite number of ms >= min, else `INVALID_OPTIONS`. */
export function checkMs(value: number, min: number, name: string): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= min) return value;
  throw new RouteConfigError(
    `${name} must be a finite number of ms >= ${min}, got ${String(value)}`,
  );
}
