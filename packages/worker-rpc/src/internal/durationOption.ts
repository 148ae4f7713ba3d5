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

/** Checks the given (defined) timer options of a transport: each `>= 0` and at most 2^31−1 ms. */
export function timerOptions(options: object, fields: readonly string[]): void {
  for (const field of fields) {
    const value = (options as Record<string, unknown>)[field];
    if (value !== undefined) durationOption(value, field, { allowInfinity: false });
  }
}
