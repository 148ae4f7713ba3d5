/**
 * One connection pipelining thousands of HTTP/1.1 requests without reading an answer. Node's
 * server parses and emits every request of the batch at once, so before the gateway capped the
 * requests in flight per connection (`server.maxPipelinedRequests`, default 8), one such socket
 * took the routes' 256 worker slots and 1 000 queue places, and every other client got 503
 * `BULKHEAD_FULL` until the batch drained. Now the attacker has at most 8 requests served at a
 * time, its connection is closed once too many wait (or its answers stall), the gateway's memory
 * stays near its baseline, and other clients are served throughout. The dispatcher's own front
 * door (`dispatcher.listen()`, `maxPipelinedRequests`, default 8) had the same exposure (one
 * socket filled the instance slots and wait queues: 503 for others) and gets the same attack.
 */
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordFigure } from '../src/figures.js';
import { startGateway, type RunningGateway } from '../src/gateway.js';
import { rawExchange } from '../src/rawHttp.js';
import { loopUntil, runConcurrently } from '../src/runConcurrently.js';

const SECTION = 'security: pipelining flood';
const PIPELINED = 5_000;

let gateway: RunningGateway;
beforeAll(async () => {
  gateway = await startGateway();
});
afterAll(async () => {
  await gateway?.close();
});

/** Resident memory of a process in MiB (`VmRSS` of /proc). */
function rssMb(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) / 1024;
}

const TARGETS = ['gateway', 'front door'] as const;
type Target = (typeof TARGETS)[number];

/** What the other clients call on a target, during the flood. */
const probeUrl = (target: Target) =>
  target === 'gateway' ? `${gateway.url}api/search?q=a` : `${gateway.frontDoorUrl}/orders/7`;

/**
 * `count` pipelined requests. The gateway: GET /api/search, every fifth a POST /api/reports with
 * a body. The front door: GET /orders/:id (an HTTP instance behind the dispatcher).
 */
function batch(target: Target, count: number): string {
  if (target === 'front door') {
    let text = '';
    for (let i = 0; i < count; i++) text += `GET /orders/${i % 50} HTTP/1.1\r\nHost: x\r\n\r\n`;
    return text;
  }
  const body = '{"text":"pipelined"}';
  let text = '';
  for (let i = 0; i < count; i++)
    text +=
      i % 5 === 4
        ? `POST /api/reports HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`
        : `GET /api/search?q=p${i % 50} HTTP/1.1\r\nHost: x\r\n\r\n`;
  return text;
}

describe.each(TARGETS)(
  '%s: one connection pipelining 5 000 requests and reading no answer',
  target => {
    it('other clients are all served (no 503), memory stays bounded, the attacker is throttled and closed', async () => {
      const pid = gateway.process.pid;
      const search = probeUrl(target);
      // warm up (instances, JIT), then the baseline
      await runConcurrently(200, 8, async () => (await fetch(search)).arrayBuffer());
      const baselineMb = rssMb(pid);

      const statuses = new Map<number, number>();
      let stop = false;
      let peakMb = baselineMb;
      const sampler = setInterval(() => (peakMb = Math.max(peakMb, rssMb(pid))), 50);
      const others = loopUntil(
        () => stop,
        4,
        async () => {
          const res = await fetch(search);
          await res.arrayBuffer();
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        },
      );
      await sleep(200);

      const { hostname, port } = new URL(target === 'gateway' ? gateway.url : gateway.frontDoorUrl);
      const attacker: Socket = connect(Number(port), hostname);
      await new Promise<void>((resolve, reject) =>
        attacker.once('connect', resolve).once('error', reject),
      );
      attacker.pause(); // reads nothing
      attacker.on('error', () => {}); // a reset while it still writes closes it too
      const attackerClosed = new Promise<true>(resolve =>
        attacker.once('close', () => resolve(true)),
      );
      attacker.write(batch(target, PIPELINED));
      await sleep(3_000); // the others keep calling meanwhile
      stop = true;
      await others;
      clearInterval(sampler);

      // now read what the attacker got: it must have been closed, with far fewer than its answers
      let received = '';
      attacker.setEncoding('latin1');
      attacker.on('data', (chunk: string) => (received += chunk));
      attacker.resume();
      const closed = await Promise.race([attackerClosed, sleep(30_000).then(() => false)]);
      attacker.destroy();
      const answered = [...received.matchAll(/HTTP\/1\.1 \d{3}/g)].length;

      const served = [...statuses.values()].reduce((a, b) => a + b, 0);
      recordFigure({
        section: SECTION,
        name: `${target}: other clients during the flood: non-200 of ${served}`,
        value: served - (statuses.get(200) ?? 0),
        target: '0',
      });
      recordFigure({
        section: SECTION,
        name: `${target}: gateway RSS growth during the flood (MiB, baseline ${baselineMb.toFixed(0)})`,
        value: (peakMb - baselineMb).toFixed(1),
        target: '< 48',
      });
      recordFigure({
        section: SECTION,
        name: `${target}: attacker's answers of ${PIPELINED} pipelined before its connection closed`,
        value: answered,
      });
      expect(served).toBeGreaterThan(20);
      expect(statuses.get(503) ?? 0).toBe(0);
      expect(statuses.get(200)).toBe(served);
      expect(peakMb - baselineMb).toBeLessThan(48); // without the cap: about 64 MiB
      expect(closed).toBe(true);
      expect(answered).toBeLessThan(PIPELINED);
    });

    it('a client that pipelines 100 requests and reads its answers gets all 100, in order', async () => {
      const path = target === 'gateway' ? '/api/search?q=a' : '/orders/7';
      let text = '';
      for (let i = 0; i < 100; i++)
        text += `GET ${path} HTTP/1.1\r\nHost: x\r\nX-Request-Id: pipe-${i}\r\n\r\n`;
      const base = target === 'gateway' ? gateway.url : gateway.frontDoorUrl;
      const exchange = await rawExchange(base, [text], { responses: 100, timeoutMs: 30_000 });
      expect(exchange.statuses).toEqual(Array.from({ length: 100 }, () => 200));
      const ids = [...exchange.text.matchAll(/x-request-id: (pipe-\d+)/gi)].map(m => m[1]);
      expect(ids).toEqual(Array.from({ length: 100 }, (_, i) => `pipe-${i}`));
    });
  },
);
