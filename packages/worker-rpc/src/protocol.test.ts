import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { isWorkerRpcError } from './errors.js';
import {
  CREDIT_UNKNOWN,
  FIXED_HEADER_BYTES,
  FLAG_ACK,
  FLAG_COMPRESSED,
  FLAG_IDEMPOTENT,
  Kind,
  MAX_HEADER_BYTES,
  MIN_HEADER_BYTES,
  decodeHeader,
  encodeHeader,
  idHex,
  idKey,
  peekId,
  setHeaderBudget,
  setHeaderCredit,
  type HeaderFields,
} from './protocol.js';

const RUNS = Number(process.env.FC_RUNS ?? 1000);
const id = Buffer.from('00112233445566778899aabbccddeeff', 'hex');

const nameArb = fc.stringMatching(/^[a-z0-9][a-z0-9._+-]{0,15}$/);
const headerArb: fc.Arbitrary<HeaderFields> = fc.record({
  kind: fc.constantFrom(...Object.values(Kind)),
  id: fc.uint8Array({ minLength: 16, maxLength: 16 }),
  flags: fc.integer({ min: 0, max: 7 }),
  attempt: fc.integer({ min: 0, max: 255 }),
  budgetMs: fc.oneof(fc.constant(-1), fc.integer({ min: 0, max: 0x7fffffff })),
  credit: fc.oneof(fc.constant(-1), fc.integer({ min: 0, max: 0xfffffffe })),
  codec: nameArb,
  encoding: fc.oneof(fc.constant(''), nameArb),
  method: fc.string({ minLength: 1, maxLength: 60, unit: 'binary' }),
  key: fc.string({ maxLength: 40 }),
  meta: fc.option(
    fc.dictionary(fc.string({ minLength: 1, maxLength: 20 }), fc.string({ maxLength: 50 }), {
      maxKeys: 8,
    }),
    { nil: undefined },
  ),
});

describe('wrpc/1 header', () => {
  test('round-trips every field', () => {
    const h = decodeHeader(
      encodeHeader({
        kind: Kind.REQ,
        id,
        flags: FLAG_IDEMPOTENT | FLAG_ACK,
        attempt: 2,
        budgetMs: 1234.2,
        codec: 'msgpack',
        encoding: 'gzip',
        method: 'math.add',
        key: 'k-1',
        meta: { traceparent: '00-abc', tenant: 'é' },
      }),
    );
    expect(h).toMatchObject({
      version: 1,
      kind: Kind.REQ,
      flags: FLAG_IDEMPOTENT | FLAG_ACK,
      attempt: 2,
      budgetMs: 1235,
      credit: -1,
      codec: 'msgpack',
      encoding: 'gzip',
      method: 'math.add',
      key: 'k-1',
    });
    expect({ ...h.meta }).toEqual({ traceparent: '00-abc', tenant: 'é' });
    expect(Buffer.from(h.id)).toEqual(id);
  });

  test('the fixed layout is what the README documents', () => {
    const buf = encodeHeader({
      kind: Kind.RES,
      id,
      flags: FLAG_COMPRESSED,
      attempt: 3,
      credit: 7,
      codec: 'json',
    });
    expect(buf[0]).toBe(1);
    expect(buf[1]).toBe(Kind.RES);
    expect(buf[2]).toBe(FLAG_COMPRESSED);
    expect(buf[3]).toBe(3);
    expect(buf.subarray(4, 20)).toEqual(id);
    expect(buf.readInt32LE(20)).toBe(-1);
    expect(buf.readUInt32LE(24)).toBe(7);
    expect(buf[28]).toBe(4);
    expect(buf.toString('latin1', 29, 33)).toBe('json');
    expect(buf.byteLength).toBe(MIN_HEADER_BYTES + 4);
  });

  test('budget and credit can be rewritten in place (routers)', () => {
    const buf = encodeHeader({ kind: Kind.REQ, id, budgetMs: 500, method: 'a' });
    setHeaderBudget(buf, 120.5);
    setHeaderCredit(buf, 9);
    expect(decodeHeader(buf)).toMatchObject({ budgetMs: 121, credit: 9 });
    setHeaderCredit(buf, -1);
    expect(buf.readUInt32LE(24)).toBe(CREDIT_UNKNOWN);
  });

  test('ids print as hex and key as 16 characters', () => {
    expect(idHex(id)).toBe('00112233445566778899aabbccddeeff');
    expect(idKey(id)).toHaveLength(16);
    expect(peekId(encodeHeader({ kind: Kind.CANCEL, id }))).toEqual(id);
    expect(peekId(Buffer.alloc(10))).toBeUndefined();
  });

  test('rejects bad fields when encoding', () => {
    expect(() => encodeHeader({ kind: Kind.REQ, id: new Uint8Array(3) })).toThrow(RangeError);
    expect(() => encodeHeader({ kind: Kind.REQ, id, key: 'x'.repeat(300), method: 'a' })).toThrow(
      RangeError,
    );
    expect(() =>
      encodeHeader({ kind: Kind.REQ, id, method: 'a', meta: { a: 1 as unknown as string } }),
    ).toThrow(TypeError);
  });

  test.each([
    ['empty', Buffer.alloc(0), 'BAD_FRAME'],
    ['truncated fixed part', Buffer.alloc(FIXED_HEADER_BYTES), 'BAD_FRAME'],
    [
      'unknown version',
      Buffer.concat([
        Buffer.from([2]),
        encodeHeader({ kind: Kind.REQ, id, method: 'a' }).subarray(1),
      ]),
      'UNSUPPORTED',
    ],
    [
      'unknown kind',
      (() => {
        const b = encodeHeader({ kind: Kind.REQ, id, method: 'a' });
        b[1] = 42;
        return b;
      })(),
      'UNSUPPORTED',
    ],
    [
      'trailing bytes',
      Buffer.concat([encodeHeader({ kind: Kind.REQ, id, method: 'a' }), Buffer.from([0])]),
      'BAD_FRAME',
    ],
    ['request without method', encodeHeader({ kind: Kind.REQ, id }), 'BAD_FRAME'],
    [
      'invalid codec name',
      (() => {
        const b = encodeHeader({ kind: Kind.REQ, id, codec: 'json', method: 'a' });
        b[29] = 0x41;
        return b;
      })(),
      'BAD_FRAME',
    ],
    [
      'invalid UTF-8 method',
      (() => {
        const b = encodeHeader({ kind: Kind.REQ, id, method: 'ab' });
        b[b.length - 5] = 0xff;
        b[b.length - 6] = 0xc3;
        return b;
      })(),
      'BAD_FRAME',
    ],
    ['too large', Buffer.alloc(MAX_HEADER_BYTES + 1, 1), 'FRAME_TOO_LARGE'],
  ])('%s gives a typed %s error', (_name, frame, code) => {
    let error: unknown;
    try {
      decodeHeader(frame);
    } catch (e) {
      error = e;
    }
    expect(isWorkerRpcError(error, code)).toBe(true);
  });

  test('property: encode then decode is the identity', () => {
    fc.assert(
      fc.property(headerArb, fields => {
        const h = decodeHeader(encodeHeader(fields));
        expect(h.kind).toBe(fields.kind);
        expect(Buffer.from(h.id)).toEqual(Buffer.from(fields.id));
        expect(h.flags).toBe(fields.flags);
        expect(h.attempt).toBe(fields.attempt);
        expect(h.budgetMs).toBe(fields.budgetMs);
        expect(h.credit).toBe(fields.credit);
        expect(h.codec).toBe(fields.codec);
        expect(h.encoding).toBe(fields.encoding);
        expect(h.method).toBe(fields.method);
        expect(h.key).toBe(fields.key);
        expect(h.meta === undefined ? {} : { ...h.meta }).toEqual(fields.meta ?? {});
      }),
      { numRuns: RUNS },
    );
  });

  test('property: random bytes decode or throw a typed error, never anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), bytes => {
        try {
          decodeHeader(bytes);
        } catch (error) {
          expect(isWorkerRpcError(error)).toBe(true);
          expect(['BAD_FRAME', 'UNSUPPORTED', 'FRAME_TOO_LARGE']).toContain(
            (error as { code: string }).code,
          );
        }
      }),
      { numRuns: RUNS },
    );
  });

  test('property: every truncation of a valid header is a typed BAD_FRAME', () => {
    fc.assert(
      fc.property(headerArb, fc.nat(), (fields, cut) => {
        const full = encodeHeader(fields);
        const n = cut % full.byteLength;
        try {
          decodeHeader(full.subarray(0, n));
          expect.unreachable('a truncated header decoded');
        } catch (error) {
          expect(isWorkerRpcError(error, 'BAD_FRAME')).toBe(true);
        }
      }),
      { numRuns: RUNS },
    );
  });

  test('property: flipping any byte of a valid header never crashes the decoder', () => {
    fc.assert(
      fc.property(headerArb, fc.nat(), fc.integer({ min: 0, max: 255 }), (fields, at, value) => {
        const buf = encodeHeader(fields);
        buf[at % buf.byteLength] = value;
        try {
          decodeHeader(buf);
        } catch (error) {
          expect(isWorkerRpcError(error)).toBe(true);
        }
      }),
      { numRuns: RUNS },
    );
  });
});
