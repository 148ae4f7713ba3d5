import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { brotli, compressorTable, deflate, gzip, resolveCompression } from './compression.js';
import { isWorkerRpcError } from './errors.js';

const RUNS = Number(process.env.FC_RUNS ?? 1000);

describe('compression', () => {
  test('gzip, deflate and brotli round-trip', async () => {
    const data = Buffer.from('hello '.repeat(1000));
    for (const c of [gzip(), deflate(), brotli()]) {
      const packed = await c.compress(data);
      expect(packed.byteLength).toBeLessThan(data.byteLength / 10);
      expect(Buffer.from(await c.decompress(packed, 1e6))).toEqual(data);
    }
  });

  test('large bodies use the thread pool and still round-trip', async () => {
    const data = Buffer.alloc(300_000, 'abc');
    const packed = gzip().compress(data);
    expect(packed).toBeInstanceOf(Promise);
    expect(Buffer.from(await gzip().decompress(await packed, 1e6))).toEqual(data);
  });

  test('a zip bomb stops at maxBytes with FRAME_TOO_LARGE', () => {
    const bomb = gzip().compress(Buffer.alloc(200_000)) as Uint8Array;
    let error: unknown;
    try {
      gzip().decompress(bomb, 10_000);
    } catch (e) {
      error = e;
    }
    expect(isWorkerRpcError(error, 'FRAME_TOO_LARGE')).toBe(true);
  });

  test('property: random bytes give BAD_FRAME (or decode), never crash', () => {
    const table = compressorTable();
    fc.assert(
      fc.property(
        fc.constantFrom('gzip', 'deflate', 'br'),
        fc.uint8Array({ minLength: 1, maxLength: 200 }),
        (name, bytes) => {
          try {
            table.get(name)!.decompress(bytes, 1e5);
          } catch (error) {
            expect(isWorkerRpcError(error)).toBe(true);
          }
        },
      ),
      { numRuns: RUNS },
    );
  });

  test('options: names, custom objects, thresholds', () => {
    expect(resolveCompression(undefined).compressor).toBeUndefined();
    expect(resolveCompression('none').compressor).toBeUndefined();
    expect(resolveCompression('br').compressor?.name).toBe('br');
    expect(resolveCompression({ compressor: 'gzip', thresholdBytes: 10 }).thresholdBytes).toBe(10);
    const custom = { compress: (d: Uint8Array) => d, decompress: (d: Uint8Array) => d };
    expect(resolveCompression(custom as never).compressor?.name).toBe('custom');
    expect(() => resolveCompression({ compressor: 'gzip', thresholdBytes: -1 })).toThrow(
      RangeError,
    );
    expect(() => resolveCompression('zip' as never)).toThrow(TypeError);
  });
});
