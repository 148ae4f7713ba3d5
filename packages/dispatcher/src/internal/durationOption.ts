import { duration, type DurationOptions } from '@x/resilience';
import { InvalidConfigError, InvalidRequestError } from '../errors.js';

/**
 * A duration in ms by `@x/resilience`'s shared `duration` rule: a string, `NaN` or a value below
 * `min` is refused naming the field, the expected and the received value (`INVALID_CONFIG` for an
 * option, `INVALID_REQUEST` with `request: true`); above 2^31−1 ms is no limit (`Infinity`), or
 * refused with `allowInfinity: false`.
 */
export function durationOption(
  value: unknown,
  field: string,
  options: Omit<DurationOptions, 'error'> & { readonly request?: boolean } = {},
): number {
  const { request = false, ...rest } = options;
  return duration(value, field, {
    ...rest,
    error: message =>
      request ? new InvalidRequestError(message) : new InvalidConfigError(message),
  });
}
