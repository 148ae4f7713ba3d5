import { describeValue, InvalidArgumentError } from '@x/resilience';

/** A non-empty string option, else `INVALID_ARGUMENT` naming the field. */
export function nonEmptyString(value: unknown, field: string): string {
  if (typeof value === 'string' && value.length > 0) return value;
  throw new InvalidArgumentError(
    field,
    `${field}: expected a non-empty string, received ${describeValue(value)}`,
  );
}

/** An integer option >= `min`, else `INVALID_ARGUMENT` naming the field. */
export function integer(value: unknown, field: string, min: number): number {
  if (typeof value === 'number' && Number.isInteger(value) && value >= min) return value;
  throw new InvalidArgumentError(
    field,
    `${field}: expected an integer >= ${min}, received ${describeValue(value)}`,
  );
}

/** The ioredis client option: anything with `status`, `duplicate` and `publish`, else `INVALID_ARGUMENT`. */
export function redisClient<T>(value: T, field: string): T {
  const v = value as { status?: unknown; duplicate?: unknown; pipeline?: unknown } | null;
  if (
    typeof v === 'object' &&
    v !== null &&
    typeof v.status === 'string' &&
    typeof v.duplicate === 'function' &&
    typeof v.pipeline === 'function'
  )
    return value;
  throw new InvalidArgumentError(
    field,
    `${field}: expected an ioredis client (new Redis(url)), received ${describeValue(value)}`,
  );
}
