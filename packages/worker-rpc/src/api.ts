/**
 * Types that derive a typed client and typed handlers from a plain TypeScript `Api` interface,
 * with no code generation. Nested objects are modules; functions are methods taking one
 * parameters object (toto's `conn.<module>.<method>(parameters)`).
 *
 * ```ts
 * interface Api { math: { add(p: { a: number; b: number }): number } }
 * conn.proxy.math.add({ a: 1, b: 2 }) // Promise<number>
 * conn.invoke('math.add', { a: 1, b: 2 }) // Promise<number>
 * ```
 */

type AnyFunction = (...args: any[]) => any;

/** The `Api` used when none is given: any method name, unknown values. */
export interface UntypedApi {
  [name: string]: any;
}

/** True when `Api` is {@link UntypedApi} (an index signature rather than known names). */
type IsUntyped<Api> = unknown extends Api ? true : string extends keyof Api ? true : false;

/** Every dotted method path of `Api` (`'math.add' | 'math.slowReport'`); `string` when untyped. */
export type MethodPath<Api> = IsUntyped<Api> extends true ? string : Paths<Api>;

type Paths<T, Prefix extends string = ''> = {
  [K in keyof T & string]: T[K] extends AnyFunction
    ? `${Prefix}${K}`
    : T[K] extends object
      ? Paths<T[K], `${Prefix}${K}.`>
      : never;
}[keyof T & string];

/** The function type found at dotted `Path` in `Api`. */
export type MethodAt<Api, Path extends string> = Path extends `${infer Head}.${infer Rest}`
  ? Head extends keyof Api
    ? MethodAt<Api[Head], Rest>
    : never
  : Path extends keyof Api
    ? Api[Path]
    : never;

/** Parameters object of method `Path` (`unknown` when untyped). */
export type ParamsOf<Api, Path extends string> =
  IsUntyped<Api> extends true
    ? unknown
    : MethodAt<Api, Path> extends (...args: infer A) => any
      ? A extends []
        ? undefined | void
        : A[0]
      : never;

/** The arguments after the method name of `invoke`: params (optional only when the method allows it), then options. */
export type InvokeArgs<Api, Path extends string, TOptions> =
  IsUntyped<Api> extends true
    ? [params?: unknown, options?: TOptions]
    : undefined extends ParamsOf<Api, Path>
      ? [params?: ParamsOf<Api, Path>, options?: TOptions]
      : [params: ParamsOf<Api, Path>, options?: TOptions];

/** Resolved result of method `Path` (`unknown` when untyped). */
export type ResultOf<Api, Path extends string> =
  IsUntyped<Api> extends true
    ? unknown
    : MethodAt<Api, Path> extends (...args: any[]) => infer R
      ? Awaited<R>
      : never;

/** A method of the typed proxy: the params object, then per-call options. */
export type ProxyMethod<F, TOptions> = F extends (...args: infer A) => infer R
  ? A extends []
    ? (params?: undefined, options?: TOptions) => Promise<Awaited<R>>
    : undefined extends A[0]
      ? (params?: A[0], options?: TOptions) => Promise<Awaited<R>>
      : (params: A[0], options?: TOptions) => Promise<Awaited<R>>
  : never;

/**
 * The untyped proxy: any property chain, callable at any depth, resolving to `unknown` (typed as
 * `any` so that `conn.proxy.a.b(params)` needs no `!` under `noUncheckedIndexedAccess`).
 */
export type UntypedProxy = any;

/** The typed dynamic proxy `conn.proxy.<module>.<method>(params, options)`. */
export type Client<Api, TOptions> =
  IsUntyped<Api> extends true
    ? UntypedProxy
    : {
        readonly [K in keyof Api]: Api[K] extends AnyFunction
          ? ProxyMethod<Api[K], TOptions>
          : Api[K] extends object
            ? Client<Api[K], TOptions>
            : never;
      };

/** Handlers implementing `Api` on the worker: same shape, each method also gets the context. */
export type Handlers<Api, TContext> =
  IsUntyped<Api> extends true
    ? HandlerTree<TContext>
    : {
        [K in keyof Api]: Api[K] extends (...args: infer A) => infer R
          ? (
              params: A extends [] ? undefined : A[0],
              context: TContext,
            ) => Awaited<R> | Promise<Awaited<R>>
          : Handlers<Api[K], TContext>;
      };

/** An untyped nested object of handlers (toto's `methods` module tree). */
export interface HandlerTree<TContext> {
  [name: string]: ((params: any, context: TContext) => unknown) | HandlerTree<TContext>;
}
