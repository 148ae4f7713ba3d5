// Type tests, checked by `tsc --noEmit` (this file is in tsconfig's `src`); never executed.
import { expectTypeOf } from 'vitest';
import type {
  CallOptions,
  HandlerContext,
  Handlers,
  MethodPath,
  ParamsOf,
  ResultOf,
  WorkerConnection,
} from './index.js';
import { createWorker, zmqWorkerTransport } from './index.js';

interface Report {
  id: string;
  rows: number;
}
interface Api {
  math: {
    add(p: { a: number; b: number }): number;
    slowReport(p: { id: string }): Promise<Report>;
  };
  ping(): 'pong';
  opt(p?: { verbose?: boolean }): string[];
}

declare const conn: WorkerConnection<Api>;

// paths, params and results derived from the interface, no codegen
expectTypeOf<MethodPath<Api>>().toEqualTypeOf<'math.add' | 'math.slowReport' | 'ping' | 'opt'>();
expectTypeOf<ParamsOf<Api, 'math.add'>>().toEqualTypeOf<{ a: number; b: number }>();
expectTypeOf<ResultOf<Api, 'math.slowReport'>>().toEqualTypeOf<Report>();

// the proxy
expectTypeOf(conn.proxy.math.add).parameters.toEqualTypeOf<
  [params: { a: number; b: number }, options?: CallOptions]
>();
expectTypeOf(conn.proxy.math.add({ a: 1, b: 2 })).toEqualTypeOf<Promise<number>>();
expectTypeOf(conn.proxy.math.slowReport({ id: 'x' }, { timeoutMs: 5 })).toEqualTypeOf<
  Promise<Report>
>();
expectTypeOf(conn.proxy.ping()).toEqualTypeOf<Promise<'pong'>>();
expectTypeOf(conn.proxy.opt()).toEqualTypeOf<Promise<string[]>>();
// @ts-expect-error wrong params
void conn.proxy.math.add({ a: 1 });
// @ts-expect-error unknown method
void conn.proxy.math.sub;
// @ts-expect-error unknown module
void conn.proxy.nope.x;

// invoke by dotted name
expectTypeOf(conn.invoke('math.add', { a: 1, b: 2 })).toEqualTypeOf<Promise<number>>();
// @ts-expect-error unknown path
void conn.invoke('math.mul', { a: 1, b: 2 });
// @ts-expect-error wrong params for the path
void conn.invoke('math.slowReport', { a: 1 });
// @ts-expect-error params are required for this method
void conn.invoke('math.add');
expectTypeOf(conn.invoke('ping')).toEqualTypeOf<Promise<'pong'>>();
expectTypeOf(conn.invoke('opt', undefined, { timeoutMs: 1 })).toEqualTypeOf<Promise<string[]>>();

// untyped connections accept anything and return unknown
declare const loose: WorkerConnection;
declare const fromUnknown: WorkerConnection<unknown>;
expectTypeOf(fromUnknown.invoke('x')).toEqualTypeOf<Promise<unknown>>();
expectTypeOf(loose.invoke('any.thing', { x: 1 })).toEqualTypeOf<Promise<unknown>>();
expectTypeOf(loose.proxy.a.b.c({ x: 1 })).toBeAny();

// handlers must implement the same interface; they also get the context
createWorker<Api>({
  transport: zmqWorkerTransport({ bind: 'tcp://127.0.0.1:0' }),
  handlers: {
    math: {
      add: (p, ctx) => {
        expectTypeOf(p).toEqualTypeOf<{ a: number; b: number }>();
        expectTypeOf(ctx).toEqualTypeOf<HandlerContext>();
        return p.a + p.b;
      },
      slowReport: async p => ({ id: p.id, rows: 1 }),
    },
    ping: () => 'pong',
    opt: () => [],
  },
});
const bad: Handlers<Api, HandlerContext> = {
  math: {
    // @ts-expect-error must return a number
    add: () => 'three',
    slowReport: async p => ({ id: p.id, rows: 1 }),
  },
  ping: () => 'pong',
  opt: () => [],
};
void bad;
