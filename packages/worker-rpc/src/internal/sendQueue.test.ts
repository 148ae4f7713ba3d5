import { describe, expect, test } from 'vitest';
import { LARGE_BODY_BYTES, SendQueue, packBatch, splitPairs } from './sendQueue.js';

/** A socket stand-in that, like zeromq.js, refuses a second send while one is pending. */
function socket(delayMs = 1) {
  const sent: (Uint8Array | string)[][] = [];
  let busy = false;
  return {
    sent,
    send(frames: (Uint8Array | string)[]) {
      if (busy)
        return Promise.reject(
          Object.assign(new Error('Socket is busy writing'), { code: 'EBUSY' }),
        );
      busy = true;
      sent.push(frames);
      return new Promise<void>(resolve => setTimeout(() => ((busy = false), resolve()), delayMs));
    },
  };
}
const b = (s: string) => Buffer.from(s);

describe('SendQueue', () => {
  test('one send at a time; pairs queued together are coalesced per routing envelope', async () => {
    const s = socket();
    const q = new SendQueue<number>(s, 100, () => expect.unreachable());
    const r1 = [b('client-1')];
    q.pushPair(r1, b('h1'), b('b1'), 1);
    q.pushPair(r1, b('h2'), undefined, 2);
    q.pushPair([b('client-1')], b('h3'), b('b3'), 3);
    q.pushPair([b('client-2')], b('h4'), b('b4'), 4);
    q.push([b('raw')], 5);
    q.pushPair([], b('h6'), undefined, 6);
    await q.whenIdle(); // not a fixed sleep: the machine may be busy
    // the three client-1 messages leave as one batch: two frames whatever their number
    const [first, ...rest] = s.sent;
    expect(first!.slice(0, 2).map(x => x.toString())).toEqual(['client-1', '']);
    expect(first).toHaveLength(4);
    const pairs = splitPairs(first!.slice(2) as Buffer[])!;
    expect(pairs.map(([h, body]) => [h.toString(), body?.toString()])).toEqual([
      ['h1', 'b1'],
      ['h2', undefined],
      ['h3', 'b3'],
    ]);
    expect(rest.map(f => f.map(x => x.toString()))).toEqual([
      ['client-2', '', 'h4', 'b4'],
      ['raw'],
      ['', 'h6'],
    ]);
    expect(q.size).toBe(0);
    // a lone message keeps the short form
    q.pushPair([], b('h7'), b('b7'));
    await q.whenIdle();
    expect(s.sent.at(-1)!.map(x => x.toString())).toEqual(['', 'h7', 'b7']);
  });

  test('large bodies are not copied into a batch: they leave as plain pairs, the same Buffers', async () => {
    const s = socket();
    const q = new SendQueue<number>(s, 100, () => expect.unreachable());
    const big1 = Buffer.alloc(LARGE_BODY_BYTES, 1);
    const big2 = Buffer.alloc(LARGE_BODY_BYTES + 1, 2);
    const r = [b('client')];
    q.pushPair(r, b('h1'), b('small-1'), 1);
    q.pushPair(r, b('h2'), b('small-2'), 2);
    q.pushPair(r, b('h3'), big1, 3); // ends the batch before it
    q.pushPair(r, b('h4'), big2, 4);
    q.pushPair(r, b('h5'), undefined, 5); // ends the plain pairs
    q.pushPair(r, b('h6'), b('small-6'), 6);
    await q.whenIdle();
    expect(s.sent).toHaveLength(3);
    const [batch, plain, last] = s.sent as Buffer[][];
    expect(batch).toHaveLength(4); // routing, '', packed headers, packed bodies
    expect(splitPairs(batch!.slice(2))!.map(([h]) => h.toString())).toEqual(['h1', 'h2']);
    // routing, '', h3, big1, h4, big2: the body Buffers themselves, no copy
    expect(plain).toHaveLength(6);
    expect(plain![3]).toBe(big1);
    expect(plain![5]).toBe(big2);
    expect(
      splitPairs(plain!.slice(2))!.map(([h, body]) => [h.toString(), body?.byteLength]),
    ).toEqual([
      ['h3', LARGE_BODY_BYTES],
      ['h4', LARGE_BODY_BYTES + 1],
    ]);
    expect(
      splitPairs(last!.slice(2))!.map(([h, body]) => [h.toString(), body?.toString()]),
    ).toEqual([
      ['h5', undefined],
      ['h6', 'small-6'],
    ]);
  });

  test('bounded: push fails when full or closed; failures report the tags of the message', async () => {
    const failed: (number | undefined)[][] = [];
    const q = new SendQueue<number>(
      { send: () => Promise.reject(new Error('down')) },
      2,
      (_e, tags) => failed.push([...tags]),
      false,
    );
    expect(q.pushPair([], b('a'), undefined, 1)).toBe(true);
    expect(q.pushPair([], b('b'), undefined, 2)).toBe(true);
    expect(q.pushPair([], b('c'), undefined, 3)).toBe(false);
    await new Promise(r => setTimeout(r, 10));
    expect(failed).toEqual([[1], [2]]);
    expect(q.close()).toEqual([]);
    expect(q.push([b('x')])).toBe(false);
  });

  test('splitPairs: [h] alone, [h, b]* pairs, batches, malformed input refused', () => {
    expect(splitPairs([b('h')])).toEqual([[b('h'), undefined]]);
    const [ph, pb] = packBatch([b('one'), b('two')], [b('x'), undefined]);
    expect(splitPairs([ph, pb])).toEqual([
      [b('one'), b('x')],
      [b('two'), undefined],
    ]);
    expect(splitPairs([ph, pb.subarray(0, pb.byteLength - 1)])).toBeUndefined();
    expect(splitPairs([ph.subarray(0, 5), pb])).toBeUndefined();
    expect(splitPairs([Buffer.concat([ph, b('z')]), pb])).toBeUndefined();
    expect(splitPairs([b('h'), b(''), b('h2'), b('x')])).toEqual([
      [b('h'), undefined],
      [b('h2'), b('x')],
    ]);
    expect(splitPairs([b('h'), b('x'), b('y')])).toBeUndefined();
    expect(splitPairs([])).toBeUndefined();
  });

  test('whenIdle settles once the last queued message was sent, at once when idle or closed', async () => {
    const s = socket(20);
    const q = new SendQueue(s, 100, () => expect.unreachable());
    await q.whenIdle();
    q.push([b('one')]);
    q.push([b('two')]);
    let idle = false;
    const waiting = q.whenIdle().then(() => (idle = true));
    await new Promise(r => setTimeout(r, 5));
    expect(idle).toBe(false);
    await waiting;
    expect(s.sent).toHaveLength(2);
    q.push([b('three')]);
    q.close();
    await q.whenIdle();
  });
});
