import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { codecTable, jsonCodec, msgpackCodec, resolveCodec } from './codec.js';

const RUNS = Number(process.env.FC_RUNS ?? 1000);

describe('codecs', () => {
  test('JSON and msgpack round-trip JSON values', () => {
    for (const codec of [jsonCodec(), msgpackCodec()]) {
      // msgpackr's prototype-pollution guard renames `__proto__` keys to `__proto_` (documented).
      const expected = codec.name === 'msgpack' ? renameProtoKeys : (v: unknown) => v;
      fc.assert(
        fc.property(fc.jsonValue(), value => {
          expect(codec.decode(codec.encode(value))).toEqual(
            expected(JSON.parse(JSON.stringify(value))),
          );
        }),
        { numRuns: RUNS / 2 },
      );
    }
  });

  test('JSON keeps a __proto__ key as data; msgpack renames it, and neither touches prototypes', () => {
    const value = JSON.parse('{"__proto__":{"polluted":true},"a":1}');
    expect(jsonCodec().decode(jsonCodec().encode(value))).toEqual(value);
    const viaMsgpack = msgpackCodec().decode(msgpackCodec().encode(value)) as Record<
      string,
      unknown
    >;
    expect(viaMsgpack).toEqual({ __proto_: { polluted: true }, a: 1 });
    expect(Object.getPrototypeOf(viaMsgpack)).toBe(Object.prototype);
  });

  test('msgpack keeps binary data and never rebuilds prototypes from __proto__ keys', () => {
    const codec = msgpackCodec();
    const decoded = codec.decode(codec.encode({ bin: Buffer.from([1, 2, 3]), n: 2 ** 40 })) as {
      bin: Uint8Array;
      n: number;
    };
    expect(Buffer.from(decoded.bin)).toEqual(Buffer.from([1, 2, 3]));
    expect(decoded.n).toBe(2 ** 40);
    // a map { "__proto__": { "polluted": true } } encoded by hand
    const evil = Buffer.from([
      0x81,
      0xa9,
      ...Buffer.from('__proto__'),
      0x81,
      0xa8,
      ...Buffer.from('polluted'),
      0xc3,
    ]);
    const out = codec.decode(evil) as Record<string, unknown>;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  test('property: random bytes make decode throw or return, never crash the process', () => {
    for (const codec of [jsonCodec(), msgpackCodec()]) {
      fc.assert(
        fc.property(fc.uint8Array({ minLength: 1, maxLength: 200 }), bytes => {
          try {
            codec.decode(bytes);
          } catch (error) {
            expect(error).toBeInstanceOf(Error);
          }
        }),
        { numRuns: RUNS },
      );
    }
  });

  test('resolveCodec accepts names and custom codecs, refuses the rest', () => {
    expect(resolveCodec(undefined).name).toBe('json');
    expect(resolveCodec('msgpack').name).toBe('msgpack');
    const custom = {
      name: 'upper',
      contentType: 'text/plain',
      encode: (v: unknown) => Buffer.from(String(v).toUpperCase()),
      decode: (b: Uint8Array) => Buffer.from(b).toString(),
    };
    expect(resolveCodec(custom)).toBe(custom);
    expect(codecTable([custom]).get('upper')).toBe(custom);
    expect(() => resolveCodec({ ...custom, name: 'Bad Name' })).toThrow(TypeError);
    expect(() => resolveCodec('pickle' as never)).toThrow(TypeError);
  });

  test('JSON refuses values it cannot represent', () => {
    expect(() => jsonCodec().encode(undefined)).toThrow(TypeError);
    expect(() => jsonCodec().encode(10n)).toThrow(TypeError);
  });
});

/** What msgpackr gives back for a JSON value: every `__proto__` key renamed `__proto_`. */
function renameProtoKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(renameProtoKeys);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value))
    out[key === '__proto__' ? '__proto_' : key] = renameProtoKeys(inner);
  return out;
}
