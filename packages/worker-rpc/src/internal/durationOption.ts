import { duration, type DurationOptions } from '@x/resilience';
import { WorkerRpcError } from '../errors.js';

/**
 * A duration option in ms by `@x/resilience`'s shared `duration` rule (default `>= 0`; above
 * 2^31−1 ms: no limit, or refused with `allowInfinity: false`); bad input is `INVALID_ARGUMENT`
 * naming the field, the expected and the received value.
 */
export function durationOption(
  value: unknown,
  field: string,
  options: Omit<DurationOptions, 'error'> = {},
): number {
  return duration(value, field, {
    ...options,
    error: message => new WorkerRpcError('INVALID_ARGUMENT', message),
  });
}
