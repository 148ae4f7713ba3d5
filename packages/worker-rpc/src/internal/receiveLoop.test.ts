import { describe, expect, test } from 'vitest';
import zmq from 'zeromq';
import { receiveLoop } from './receiveLoop.js';

describe('receiveLoop', () => {
  test('delivers every message in order over real sockets, and resolves when the socket closes under a pending receive', async () => {
    const router = new zmq.Router({ linger: 0 });
    await router.bind('tcp://127.0.0.1:0');
    const dealer = new zmq.Dealer({ linger: 0 });
    dealer.connect(router.lastEndpoint!);
    const got: string[] = [];
    let resolveAll!: () => void;
    const all = new Promise<void>(r => (resolveAll = r));
    const loop = receiveLoop(router, frames => {
      got.push(frames[1]!.toString());
      if (got.length === 100) resolveAll();
    });
    for (let i = 0; i < 100; i++) await dealer.send(String(i));
    await all;
    expect(got).toEqual(Array.from({ length: 100 }, (_, i) => String(i)));
    // the loop now waits in receive(); closing the socket ends it without an error
    router.close();
    await expect(loop).resolves.toBeUndefined();
    dealer.close();
  });

  test('a receive error on an open socket rejects', async () => {
    const failing = {
      closed: false,
      receive: () => Promise.reject(Object.assign(new Error('boom'), { code: 'EFSM' })),
    };
    await expect(receiveLoop(failing, () => {})).rejects.toThrow('boom');
  });
});
