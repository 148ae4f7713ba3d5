import { duration, type DurationOptions } from '@x/resilience';
import { InvalidCallError } from '../errors.js';

const invalid = (message: string) => new InvalidCallError(message);

/**
 * A duration option in ms, validated by `@x/resilience`'s shared `duration` rule (default `> 0`;
 * above 2^31−1 ms: no limit, `Infinity`); bad input is `INVALID_REQUEST` naming the field.
 */
export function durationOption(
  value: unknown,
  field: string,
  options: DurationOptions = {},
): number {
  return duration(value, field, { exclusiveMin: true, ...options, error: invalid });
}
