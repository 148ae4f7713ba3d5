/**
 * The dashboard's event streams under clients that never read (issue 12, item 1). Before the fix,
 * 1 000 clients that opened `/_x/events` and read nothing grew the gateway's heap by about 60 MB/s
 * (every snapshot serialised once per client and queued without bound) until V8 aborted with
 * "JavaScript heap out of memory" and took the children with it.
 *
 * The gateway CLI runs as deployed, with `dashboard.maxStreams` just above the flood (so every
 * stream is accepted and backpressure, not the cap, must bound the memory) and a stall timeout
 * longer than the run (so no stream is dropped for it). Meanwhile one dashboard reads its stream
 * normally, and `/api/search` is called in a loop. Checked: the gateway's RSS stays under 400 MB,
 * it never exits, the reading dashboard keeps getting a state every second or so, `/api/search`
 * p99 stays within its deadline, and one stream more than `maxStreams` gets 503
 * `TOO_MANY_STREAMS`. Quick profile: 1 000 clients for 20 s; long profile: 1 000 for 3 minutes.
 */
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordFigure } from '../src/figures.js';
import { startGateway, type RunningGateway } from '../src/gateway.js';
import { sized } from '../src/profile.js';
import { loopUntil } from '../src/runConcurrently.js';
import { summarize } from '../src/stats.js';

const CLIENTS = 1_000;
const DURATION_MS = sized({ quick: 20_000, long: 180_000 });
const RSS_LIMIT_MB = 400;
/** `resilience.search.timeoutMs` of the default configuration. */
const SEARCH_DEADLINE_MS = 2_000;

let gateway: RunningGateway;
const sockets: Socket[] = [];

beforeAll(async () => {
  gateway = await startGateway({
    config: {
      dashboard: { maxStreams: CLIENTS + 1, stallTimeoutMs: DURATION_MS * 10 },
    },
  });
});

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await gateway?.close();
});

/** The resident set size of a process, in MB (from /proc). */
function rssMb(pid: number): number {
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb === undefined ? Number.NaN : Number(kb) / 1024;
  } catch {
    return Number.NaN; // the process is gone
  }
}

/** Opens `/_x/events` on a raw socket; `read` false: the client never reads a byte. */
async function openStream(read: boolean, onData?: (text: string) => void): Promise<Socket> {
  const { hostname, port } = new URL(gateway.url);
  const socket = connect({ host: hostname, port: Number(port) });
  sockets.push(socket);
  socket.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.write(`GET /_x/events HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n`);
  if (read) socket.setEncoding('latin1').on('data', (chunk: string) => onData?.(chunk));
  else socket.pause();
  return socket;
}

describe('dashboard event streams', () => {
  it(
    `${CLIENTS} clients that never read /_x/events for ${DURATION_MS / 1000} s: RSS under ${RSS_LIMIT_MB} MB, search p99 within its deadline, no crash`,
    async () => {
      const pid = gateway.process.pid;
      const baseline = rssMb(pid);
      let states = 0;
      let stateGaps = 0;
      let lastState = performance.now();
      await openStream(true, text => {
        const now = performance.now();
        const count = text.split('event: state').length - 1;
        if (count > 0) {
          stateGaps = Math.max(stateGaps, now - lastState);
          lastState = now;
        }
        states += count;
      });
      for (let i = 0; i < CLIENTS; i += 50)
        await Promise.all(
          Array.from({ length: Math.min(50, CLIENTS - i) }, () => openStream(false)),
        );
      const opened = performance.now();

      const search = new Pool(new URL(gateway.url).origin, {
        connections: 4,
        headersTimeout: 10_000,
        bodyTimeout: 10_000,
      });
      const latencies: number[] = [];
      let failures = 0;
      let maxRss = baseline;
      const sampler = setInterval(() => (maxRss = Math.max(maxRss, rssMb(pid))), 250);
      const done = () => performance.now() - opened > DURATION_MS;
      // a busy gateway: report jobs finishing all the time, each one an event line for every stream
      let jobs = 0;
      const submit = loopUntil(done, 2, async () => {
        const res = await search.request({
          method: 'POST',
          path: '/api/report-jobs',
          headers: { 'content-type': 'application/json' },
          body: '{"kind":"sales","rows":1}',
        });
        await res.body.text();
        if (res.statusCode === 202) jobs++;
      });
      try {
        await loopUntil(done, 2, async () => {
          const started = performance.now();
          try {
            const res = await search.request({ method: 'GET', path: '/api/search?q=lamp' });
            await res.body.text();
            if (res.statusCode !== 200) failures++;
          } catch {
            failures++;
          }
          latencies.push(performance.now() - started);
          await sleep(20);
        });
        await submit;
      } finally {
        clearInterval(sampler);
        await search.close();
      }
      const end = rssMb(pid);
      maxRss = Math.max(maxRss, end);
      const summary = summarize(latencies);

      // one stream more than maxStreams is refused, not queued
      const extra = await fetch(`${gateway.url}_x/events`, { signal: AbortSignal.timeout(10_000) });
      const extraBody = (await extra.json().catch(() => ({ error: { code: 'NOT_JSON' } }))) as {
        error: { code: string };
      };

      recordFigure({
        section: 'dashboard streams',
        name: `gateway RSS with ${CLIENTS} non-reading /_x/events clients for ${DURATION_MS / 1000} s: before / max / end`,
        value: `${baseline.toFixed(0)} / ${maxRss.toFixed(0)} / ${end.toFixed(0)} MB`,
        target: `max < ${RSS_LIMIT_MB} MB`,
      });
      recordFigure({
        section: 'dashboard streams',
        name: `/api/search meanwhile (2 loops): calls, failures, p50 / p99 / max`,
        value: `${summary.count}, ${failures}, ${summary.p50.toFixed(0)} / ${summary.p99.toFixed(0)} / ${summary.max.toFixed(0)} ms`,
        target: `p99 < ${SEARCH_DEADLINE_MS} ms, failures < 1%`,
      });
      recordFigure({
        section: 'dashboard streams',
        name: 'report jobs submitted meanwhile (2 loops; each finished job is an event line for every stream)',
        value: jobs,
      });
      recordFigure({
        section: 'dashboard streams',
        name: 'a reading dashboard meanwhile: state events, longest gap',
        value: `${states}, ${(stateGaps / 1000).toFixed(1)} s`,
        target: 'a state at least every 5 s',
      });

      expect(gateway.process.child.exitCode ?? gateway.process.child.signalCode).toBeNull();
      expect(maxRss).toBeLessThan(RSS_LIMIT_MB);
      expect(summary.p99).toBeLessThan(SEARCH_DEADLINE_MS);
      expect(failures).toBeLessThan(Math.max(1, summary.count / 100));
      expect(states).toBeGreaterThanOrEqual(Math.floor(DURATION_MS / 5_000));
      expect(stateGaps).toBeLessThan(5_000);
      expect(extra.status).toBe(503);
      expect(extra.headers.get('retry-after')).not.toBeNull();
      expect(extraBody.error.code).toBe('TOO_MANY_STREAMS');
    },
    DURATION_MS + 90_000,
  );
});
