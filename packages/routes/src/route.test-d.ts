// Type-level tests, checked by `tsc --noEmit` (typecheck): the route infers its types.
import { expectTypeOf } from 'vitest';
import type { Dependency } from './dependency.js';
import { httpEntrypoint } from './httpEntrypoint.js';
import { memoryQueue } from './memoryQueue.js';
import type { Outcome } from './outcome.js';
import { route, type Route } from './route.js';
import { timerEntrypoint, type TimerTick } from './timerEntrypoint.js';
import { chain, json, schema, translator } from './translator.js';

interface Order {
  id: number;
  total: number;
}
const isOrder = (x: unknown): x is Order => typeof (x as Order)?.id === 'number';

// The translator chain types the target's input; the target's return types the result.
const orders = route({
  entrypoint: memoryQueue<string>(),
  translators: [
    json(),
    schema(isOrder),
    translator('cents', (o: Order) => ({ ...o, cents: o.total * 100 })),
  ],
  target: async input => {
    expectTypeOf(input).toEqualTypeOf<{ cents: number; id: number; total: number }>();
    return input.cents;
  },
});
expectTypeOf(orders).toEqualTypeOf<
  Route<string, { cents: number; id: number; total: number }, number, Record<never, never>>
>();
expectTypeOf(orders.startRoute(null, 'x')).resolves.toEqualTypeOf<Outcome<number>>();

// Without translators the target gets the entrypoints' message type (a union for several).
route({
  entrypoint: [memoryQueue<number>(), timerEntrypoint({ intervalMs: 1000 })],
  target: message => {
    expectTypeOf(message).toEqualTypeOf<number | TimerTick>();
  },
});
route({
  entrypoint: httpEntrypoint(),
  target: body => expectTypeOf(body).toEqualTypeOf<Buffer>(),
});
route({
  entrypoint: httpEntrypoint({ message: 'query' }),
  target: q => expectTypeOf(q).toEqualTypeOf<Readonly<Record<string, string>>>(),
});

// Dependencies are typed in ctx.deps.
declare const db: Dependency<{ query(sql: string): string[] }>;
route({
  dependencies: { db },
  target: (_m: unknown, ctx) => {
    expectTypeOf(ctx.deps.db.query('select 1')).toEqualTypeOf<string[]>();
  },
});

// Callbacks see the translated input and the result.
route({
  translators: [json<Order>()],
  target: o => o.total,
  callbacks: {
    onSuccess: event => {
      expectTypeOf(event.input).toEqualTypeOf<Order>();
      expectTypeOf(event.result).toEqualTypeOf<number>();
    },
    onFailure: event => expectTypeOf(event.input).toEqualTypeOf<Order | undefined>(),
  },
});

// A chain whose steps do not fit is a compile error.
route({
  translators: [
    json<Order>(),
    // @ts-expect-error -- a string step cannot follow an Order step
    translator('upper', (s: string) => s.toUpperCase()),
  ],
  target: () => 1,
});
// A target whose input does not match the chain's output is a compile error too.
route({
  translators: [json<Order>()],
  // @ts-expect-error -- the chain produces an Order, not a string
  target: (s: string) => s,
});
chain(
  json<Order>(),
  // @ts-expect-error -- chain() checks each step's input against the previous output
  translator('upper', (s: string) => s.toUpperCase()),
);
expectTypeOf(
  chain(
    json<Order>(),
    translator('id', (o: Order) => o.id),
  ).translate,
).returns.toEqualTypeOf<number | PromiseLike<number>>();
