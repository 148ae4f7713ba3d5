import { describeValue } from '@x/resilience';
import { RouteConfigError } from './errors.js';
import type { StandardSchemaLike } from './translator.js';

/** A path into the validated value: `['items', 0, 'kind']` reads `items.0.kind`. */
export type IssuePath = readonly (string | number)[];

/**
 * One reason a value was refused (a Standard Schema v1 issue with two more fields): where, what
 * was expected and what was received. `message` is `expected <expected>, received <received>`.
 */
export interface ValidationIssue {
  readonly path: IssuePath;
  readonly expected: string;
  /** The received value as {@link describeValue} renders it (`"nope"`, `42`, `an object`). */
  readonly received: string;
  readonly message: string;
}

/** Refuses the value being validated: `refuse(['kind'], 'one of "a", "b"', value.kind)`. */
export type Refuse = (
  path: string | number | IssuePath,
  expected: string,
  received: unknown,
) => never;

/** A validator built by {@link validator}: a Standard Schema v1, so {@link schema} and any Standard Schema consumer take it. */
export interface Validator<T> extends StandardSchemaLike<T> {
  readonly '~standard': {
    readonly version: 1;
    readonly vendor: string;
    validate(
      value: unknown,
    ): { value: T; issues?: undefined } | { issues: readonly ValidationIssue[] };
  };
  /** Whether `value` passes (a type guard). */
  is(value: unknown): value is T;
}

class Refusal {
  constructor(readonly issue: ValidationIssue) {}
}

/**
 * Builds a {@link Validator} from a check that returns the (possibly normalized) value or calls
 * `refuse(path, expected, received)` on the first problem. Used with {@link schema}, a refusal
 * fails the message with `TRANSLATION_FAILED` (HTTP 400) and a message naming the field, e.g.
 * `reportRequest: kind: expected one of "sales", "inventory", received "nope"`.
 *
 * @example
 * const order = validator<Order>((v, refuse) => {
 *   if (typeof v !== 'object' || v === null) refuse([], 'an object', v);
 *   const { id } = v as { id?: unknown };
 *   if (!Number.isInteger(id)) refuse('id', 'an integer', id);
 *   return v as Order;
 * });
 * route({ translators: [json(), schema(order, 'order')], target });
 */
export function validator<T>(check: (value: unknown, refuse: Refuse) => T): Validator<T> {
  if (typeof check !== 'function') throw new RouteConfigError('validator() needs a function');
  const validate = (value: unknown) => {
    try {
      return { value: check(value, refuse) };
    } catch (error) {
      if (error instanceof Refusal) return { issues: [error.issue] as const };
      throw error;
    }
  };
  return {
    '~standard': { version: 1, vendor: '@x/routes', validate },
    is: (value: unknown): value is T => validate(value).issues === undefined,
  };
}

const refuse: Refuse = (path, expected, received) => {
  const described = describeValue(received);
  throw new Refusal({
    path: typeof path === 'object' ? path : [path],
    expected,
    received: described,
    message: `expected ${expected}, received ${described}`,
  });
};
