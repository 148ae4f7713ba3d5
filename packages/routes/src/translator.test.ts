import { isXError } from '@x/resilience';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TranslationError } from './errors.js';
import {
  chain,
  compileTranslators,
  json,
  schema,
  text,
  translator,
  type StandardSchemaLike,
} from './translator.js';
import type { WorkerContext } from './workerContext.js';

const ctx = {} as WorkerContext;

/** Runs a translator to completion, returning its value or its error. */
async function run(
  t: { translate(input: any, ctx: WorkerContext): unknown },
  input: unknown,
): Promise<{ value?: unknown; error?: unknown }> {
  try {
    return { value: await t.translate(input, ctx) };
  } catch (error) {
    return { error };
  }
}

describe('translators', () => {
  it('json() decodes strings, Buffers and Uint8Arrays, passes decoded values through, rejects the rest', async () => {
    expect(await run(json(), '{"a":1}')).toEqual({ value: { a: 1 } });
    expect(await run(json(), Buffer.from('[1]'))).toEqual({ value: [1] });
    expect(await run(json(), new Uint8Array([0x32]))).toEqual({ value: 2 });
    expect(await run(json(), { already: 'decoded' })).toEqual({ value: { already: 'decoded' } });
    expect(await run(json(), 'null')).toEqual({ value: null });
    for (const bad of [undefined, '', '   ', '{', Buffer.from([0xc3, 0x28])]) {
      const { error } = await run(json(), bad);
      expect(isXError(error, 'TRANSLATION_FAILED'), String(bad)).toBe(true);
    }
    // blank input says so (checked only once the parse failed), malformed input gives the parser's reason
    for (const blank of ['', ' \n\t ', Buffer.from('  ')])
      expect(((await run(json(), blank)).error as Error).message).toBe('json: empty message');
    expect(((await run(json(), ' {')).error as Error).message).toMatch(/^json: .*JSON/);
    expect(await run(json(), ' \n{"a":2} ')).toEqual({ value: { a: 2 } });
  });

  it('text() decodes bytes as UTF-8 and rejects non-text', async () => {
    expect(await run(text(), Buffer.from('héllo'))).toEqual({ value: 'héllo' });
    expect(await run(text(), 'as is')).toEqual({ value: 'as is' });
    expect(isXError((await run(text(), 42)).error, 'TRANSLATION_FAILED')).toBe(true);
  });

  it('schema() accepts a Standard Schema (sync or async), safeParse, parse or a type guard', async () => {
    const standard = (async: boolean): StandardSchemaLike<number> => ({
      '~standard': {
        validate: (v: unknown) => {
          const result =
            typeof v === 'number'
              ? { value: v * 10 }
              : { issues: [{ message: 'not a number', path: ['x', 0] }] };
          return async ? Promise.resolve(result) : result;
        },
      },
    });
    for (const async of [false, true]) {
      expect(await run(schema(standard(async)), 4)).toEqual({ value: 40 });
      const { error } = await run(schema(standard(async)), 'no');
      expect(error).toBeInstanceOf(TranslationError);
      expect((error as Error).message).toBe('schema: x.0: not a number');
    }
    const zodLike = {
      safeParse: (v: unknown) =>
        typeof v === 'string'
          ? { success: true as const, data: v.trim() }
          : { success: false as const, error: new Error('expected string') },
    };
    expect(await run(schema(zodLike), ' a ')).toEqual({ value: 'a' });
    expect(((await run(schema(zodLike), 1)).error as Error).message).toBe(
      'schema: expected string',
    );
    const parseOnly = {
      parse: (v: unknown) => {
        if (!Array.isArray(v)) throw new Error('expected array');
        return v;
      },
    };
    expect(await run(schema(parseOnly, 'list'), [1])).toEqual({ value: [1] });
    expect(((await run(schema(parseOnly, 'list'), {})).error as Error).message).toBe(
      'list: expected array',
    );
    const guard = (v: unknown): v is boolean => typeof v === 'boolean';
    expect(await run(schema(guard), true)).toEqual({ value: true });
    expect(((await run(schema(guard), null)).error as Error).message).toBe(
      'schema: expected a value accepted by guard, received null (use validator() to name the failing field)',
    );
    expect(() => schema(42 as never)).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS' }));
    expect(() => schema({} as never)).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS' }));
  });

  it('chain() feeds each step the previous output, sync or async, and names the failing step', async () => {
    const c = chain(
      json<{ n: number }>(),
      translator('inc', async (x: { n: number }) => x.n + 1),
      translator('check', (n: number) => {
        if (n > 10) throw new Error('too big');
        return `n=${n}`;
      }),
    );
    expect(await run(c, '{"n":1}')).toEqual({ value: 'n=2' });
    const { error } = await run(c, '{"n":10}');
    expect(error).toMatchObject({
      code: 'TRANSLATION_FAILED',
      index: 2,
      translator: 'check',
      message: 'check: too big',
    });
    const first = await run(c, 'nope');
    expect(first.error).toMatchObject({ index: 0, translator: 'json' });
    expect(c.name).toBe('chain(json, inc, check)');
    expect(compileTranslators([])).toBeUndefined();
    const thrower = compileTranslators([
      () => {
        throw 'a string';
      },
    ])!;
    expect(() => thrower(1, ctx)).toThrow(
      expect.objectContaining({ code: 'TRANSLATION_FAILED', message: 'translator 0: a string' }),
    );
  });

  it('property: json() never throws anything but TRANSLATION_FAILED, and round-trips JSON values', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string(),
          fc.uint8Array().map(a => Buffer.from(a)),
          fc.anything(),
        ),
        async input => {
          const { error } = await run(json(), input);
          if (error !== undefined) expect(isXError(error, 'TRANSLATION_FAILED')).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), async value => {
        const { value: decoded } = await run(json(), JSON.stringify(value));
        expect(JSON.stringify(decoded)).toBe(JSON.stringify(value));
      }),
      { numRuns: 300 },
    );
  });

  it('property: a chain equals the composition of its steps; a failing step is reported with its index', async () => {
    const step = fc.record({
      add: fc.integer({ min: -5, max: 5 }),
      failAt: fc.option(fc.integer({ min: -50, max: 50 }), { nil: undefined }),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { minLength: 1, maxLength: 8 }),
        fc.integer({ min: -50, max: 50 }),
        fc.boolean(),
        async (steps, start, async) => {
          const list = steps.map(s => (x: number) => {
            if (s.failAt === x) throw new Error(`fail at ${x}`);
            return async ? Promise.resolve(x + s.add) : x + s.add;
          });
          let expected: { value?: number; index?: number } = {};
          let x = start;
          for (let i = 0; i < steps.length; i++) {
            if (steps[i]!.failAt === x) {
              expected = { index: i };
              break;
            }
            x += steps[i]!.add;
            if (i === steps.length - 1) expected = { value: x };
          }
          const compiled = compileTranslators(list)!;
          let result: { value?: unknown; error?: unknown };
          try {
            result = { value: await compiled(start, ctx) };
          } catch (error) {
            result = { error };
          }
          if (expected.index === undefined) expect(result).toEqual({ value: expected.value });
          else
            expect(result.error).toMatchObject({
              code: 'TRANSLATION_FAILED',
              index: expected.index,
            });
        },
      ),
      { numRuns: 300 },
    );
  });
});
