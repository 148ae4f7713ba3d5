import { isUtf8 } from 'node:buffer';
import { describeValue } from '@x/resilience';
import { RouteConfigError, TranslationError, type TranslationIssue } from './errors.js';
import type { WorkerContext } from './workerContext.js';

/**
 * One step of a route's translator chain (≙ micro_framework's `MessageTranslator`, NestJS pipes):
 * receives the previous step's output (the raw message for the first) and returns the next. A
 * throw (or rejection) fails the message with `TRANSLATION_FAILED`, which is terminal.
 */
export interface Translator<In, Out> {
  readonly name?: string;
  translate(input: In, ctx: WorkerContext): Out | PromiseLike<Out>;
}

/** A translator written as a plain function. */
export type TranslatorFn<In, Out> = (input: In, ctx: WorkerContext) => Out | PromiseLike<Out>;

/** A {@link Translator} or a {@link TranslatorFn}. */
export type TranslatorLike<In, Out> = Translator<In, Out> | TranslatorFn<In, Out>;

/** The input type of a translator. */
export type TranslatorInput<T> =
  T extends Translator<infer I, any>
    ? I
    : T extends (input: infer I, ...rest: any[]) => any
      ? I
      : never;

/** The output type of a translator (awaited). */
export type TranslatorOutput<T> =
  T extends Translator<any, infer O>
    ? Awaited<O>
    : T extends (...args: any[]) => infer O
      ? Awaited<O>
      : never;

/** The type a chain of translators produces from `In`: the last one's output (`In` when empty). */
export type ChainOutput<T, In> = T extends readonly []
  ? In
  : T extends readonly [...any[], infer Last]
    ? TranslatorOutput<Last>
    : T extends readonly (infer X)[]
      ? TranslatorOutput<X>
      : T extends TranslatorLike<any, any>
        ? TranslatorOutput<T>
        : In;

/**
 * The chain `T` must be, starting from `In`: a tuple whose each element accepts the previous
 * output. Used as `T & ValidChain<T, In>`, a step that does not fit fails to compile at that step.
 */
export type ValidChain<T, In> = T extends readonly [infer Head, ...infer Rest]
  ? readonly [TranslatorLike<In, any>, ...ValidChain<Rest, TranslatorOutput<Head>>]
  : T;

/** Chains translators into one, checking at compile time that each accepts the previous output. */
export function chain<A, B>(t1: TranslatorLike<A, B>): Translator<A, B>;
export function chain<A, B, C>(
  t1: TranslatorLike<A, B>,
  t2: TranslatorLike<B, C>,
): Translator<A, C>;
export function chain<A, B, C, D>(
  t1: TranslatorLike<A, B>,
  t2: TranslatorLike<B, C>,
  t3: TranslatorLike<C, D>,
): Translator<A, D>;
export function chain<A, B, C, D, E>(
  t1: TranslatorLike<A, B>,
  t2: TranslatorLike<B, C>,
  t3: TranslatorLike<C, D>,
  t4: TranslatorLike<D, E>,
): Translator<A, E>;
export function chain<A, B, C, D, E, F>(
  t1: TranslatorLike<A, B>,
  t2: TranslatorLike<B, C>,
  t3: TranslatorLike<C, D>,
  t4: TranslatorLike<D, E>,
  t5: TranslatorLike<E, F>,
): Translator<A, F>;
export function chain(...translators: TranslatorLike<any, any>[]): Translator<any, any> {
  const run = compileTranslators(translators);
  return {
    name: `chain(${translators.map(translatorName).join(', ')})`,
    translate: (input, ctx) => (run === undefined ? input : run(input, ctx)),
  };
}

/** Wraps a function as a named {@link Translator}. */
export function translator<In, Out>(name: string, fn: TranslatorFn<In, Out>): Translator<In, Out> {
  if (typeof fn !== 'function') throw new RouteConfigError('translator() needs a function');
  return { name, translate: fn };
}

function decodeText(input: unknown, name: string): string | undefined {
  if (typeof input === 'string') return input;
  if (input instanceof Uint8Array) {
    if (!isUtf8(input))
      throw new TranslationError(`${name}: the bytes are not valid UTF-8`, 0, name);
    return (
      Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength)
    ).toString('utf8');
  }
  return undefined;
}

/**
 * Decodes JSON (≙ `JSONTranslator`, which was a no-op in the original): a string, `Buffer` or
 * `Uint8Array` is parsed (invalid UTF-8, empty or malformed input → `TRANSLATION_FAILED`); any
 * other value (a queue payload already decoded) passes through unchanged, so one chain serves HTTP
 * and queues; `undefined` fails. The type parameter is an unchecked cast: follow with {@link schema}.
 */
export function json<T = unknown>(): Translator<unknown, T> {
  return {
    name: 'json',
    translate(input) {
      const text = decodeText(input, 'json');
      if (text === undefined) {
        if (input === undefined) throw new TranslationError('json: no message', 0, 'json');
        return input as T;
      }
      try {
        return JSON.parse(text) as T;
      } catch (error) {
        // only a failed parse looks for blank input: no trim() per message
        if (text.trim() === '') throw new TranslationError('json: empty message', 0, 'json');
        throw new TranslationError(`json: ${(error as Error).message}`, 0, 'json', {
          cause: error,
        });
      }
    },
  };
}

/** Decodes a `Buffer`/`Uint8Array` as UTF-8 text (invalid bytes → `TRANSLATION_FAILED`); strings pass. */
export function text(): Translator<unknown, string> {
  return {
    name: 'text',
    translate(input) {
      const decoded = decodeText(input, 'text');
      if (decoded === undefined)
        throw new TranslationError(
          `text: expected bytes or a string, got ${typeOf(input)}`,
          0,
          'text',
        );
      return decoded;
    },
  };
}

/** A Standard Schema v1 validator (zod >= 3.24, valibot >= 1, arktype ...). */
export interface StandardSchemaLike<T> {
  readonly '~standard': {
    validate(
      value: unknown,
    ):
      | { value: T; issues?: undefined }
      | { issues: ReadonlyArray<{ message: string; path?: ReadonlyArray<unknown> }> }
      | PromiseLike<
          | { value: T; issues?: undefined }
          | { issues: ReadonlyArray<{ message: string; path?: ReadonlyArray<unknown> }> }
        >;
  };
}

/** What {@link schema} accepts: a Standard Schema, anything with `safeParse` or `parse`, or a type guard. */
export type SchemaLike<T> =
  | StandardSchemaLike<T>
  | { safeParse(value: unknown): { success: true; data: T } | { success: false; error: unknown } }
  | { parse(value: unknown): T }
  | ((value: unknown) => value is T);

/**
 * Validates (and, for schema libraries, transforms) the previous output. Accepts a Standard
 * Schema (`~standard.validate`), a zod-style `safeParse`/`parse`, or a type guard. A rejection is
 * `TRANSLATION_FAILED` with the first issues in the message (bounded to 300 characters).
 */
export function schema<T>(validator: SchemaLike<T>, name = 'schema'): Translator<unknown, T> {
  if (validator === null || (typeof validator !== 'object' && typeof validator !== 'function'))
    throw new RouteConfigError('schema() needs a schema or a type guard');
  const fail = (detail: string, cause?: unknown, issues?: TranslationIssue[]): never => {
    throw new TranslationError(`${name}: ${detail.slice(0, 300)}`, 0, name, { cause, issues });
  };
  if ('~standard' in validator) {
    const check = (
      result: Awaited<ReturnType<StandardSchemaLike<T>['~standard']['validate']>>,
    ): T => {
      if (!result.issues) return result.value;
      const issues = result.issues.slice(0, 3).map(i => ({
        path: (i.path ?? []).map(pathKey).join('.'),
        message: String(i.message).slice(0, 300),
      }));
      return fail(
        issues.map(i => (i.path ? `${i.path}: ` : '') + i.message).join('; '),
        result.issues,
        issues,
      );
    };
    return {
      name,
      translate(input) {
        const result = validator['~standard'].validate(input);
        return isThenable(result) ? Promise.resolve(result).then(check) : check(result);
      },
    };
  }
  if ('safeParse' in validator && typeof validator.safeParse === 'function') {
    return {
      name,
      translate(input) {
        const result = validator.safeParse(input);
        return result.success ? result.data : fail(describe(result.error), result.error);
      },
    };
  }
  if ('parse' in validator && typeof validator.parse === 'function') {
    return {
      name,
      translate(input) {
        try {
          return validator.parse(input);
        } catch (error) {
          return fail(describe(error), error);
        }
      },
    };
  }
  if (typeof validator === 'function') {
    return {
      name,
      translate(input) {
        return validator(input)
          ? input
          : fail(
              `expected a value accepted by ${validator.name || 'the type guard'}, received ${describeValue(input)} (use validator() to name the failing field)`,
            );
      },
    };
  }
  throw new RouteConfigError('schema() needs a schema or a type guard');
}

/** A Standard Schema path segment (a key, or `{ key }`) as text. */
function pathKey(segment: unknown): string {
  const key =
    segment !== null && typeof segment === 'object' ? (segment as { key?: unknown }).key : segment;
  return typeof key === 'symbol' ? key.toString() : String(key);
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (value instanceof Uint8Array) return 'byte array';
  return typeof value;
}

/** @internal */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

/** @internal The display name of a translator. */
export function translatorName(t: TranslatorLike<any, any>): string {
  if (typeof t === 'function') return t.name || 'translator';
  return t.name ?? 'translator';
}

/**
 * @internal Compiles a chain into one function. Each step gets the previous output; a failure is
 * wrapped in a {@link TranslationError} naming the step (unless it already is one). Synchronous
 * steps stay synchronous. Returns undefined for an empty chain.
 */
export function compileTranslators(
  list: readonly TranslatorLike<any, any>[],
): ((input: unknown, ctx: WorkerContext) => unknown) | undefined {
  if (list.length === 0) return undefined;
  const steps = list.map((t, index) => {
    if (typeof t === 'function') return { fn: t, name: t.name || `translator ${index}`, index };
    if (t === null || typeof t !== 'object' || typeof t.translate !== 'function')
      throw new RouteConfigError(`translators[${index}] is not a translator`);
    return {
      fn: (input: unknown, ctx: WorkerContext) => t.translate(input, ctx),
      name: t.name ?? `translator ${index}`,
      index,
    };
  });
  const wrap = (error: unknown, index: number, name: string): never => {
    if (error instanceof TranslationError && error.index === index) throw error;
    const detail = error instanceof Error ? error.message : String(error);
    throw new TranslationError(
      error instanceof TranslationError ? detail : `${name}: ${detail}`,
      index,
      name,
      { cause: error, issues: error instanceof TranslationError ? error.issues : undefined },
    );
  };
  const runFrom = (start: number, value: unknown, ctx: WorkerContext): unknown => {
    for (let i = start; i < steps.length; i++) {
      const step = steps[i]!;
      let out: unknown;
      try {
        out = step.fn(value, ctx);
      } catch (error) {
        return wrap(error, step.index, step.name);
      }
      if (isThenable(out)) {
        return Promise.resolve(out).then(
          v => runFrom(i + 1, v, ctx),
          error => wrap(error, step.index, step.name),
        );
      }
      value = out;
    }
    return value;
  };
  return (input, ctx) => runFrom(0, input, ctx);
}
