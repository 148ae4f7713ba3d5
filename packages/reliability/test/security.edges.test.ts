/**
 * Edges of the gateway as deployed (issue 12): requests the request guard could not see whole,
 * client mistakes answered 4xx with a stable code (never 500 or a 502 write error), trouble
 * upstream answered 502/503/504, and a lockout of admin token guessers.
 *
 * - More header lines than the guard inspects: Node keeps only the first 2 000 of `rawHeaders`, so
 *   a second `Host` or an ambiguous `Transfer-Encoding` behind 2 100 fillers was served (200). Both
 *   the gateway and the dispatcher's front door now answer 431 `TOO_MANY_HEADERS`.
 * - `/api/report-jobs/%` (a URIError) was 500; an admin body over 64 KiB was 502 "write EPIPE";
 *   `{"instances": 1e9}` or `-1` was 500; a worker-rpc `UNAVAILABLE` was 500.
 * - Wrong admin tokens at full speed were all answered 403: a client address is now locked out
 *   (429 `TOO_MANY_ATTEMPTS`, `Retry-After`) after `admin.maxFailures` (10) of them.
 *
 * Attacks come from their own loopback addresses (127.0.0.x), since the lockout is per address.
 */
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordFigure } from '../src/figures.js';
import { startGateway, type RunningGateway } from '../src/gateway.js';
import { sized } from '../src/profile.js';
import { rawExchange, type RawExchange } from '../src/rawHttp.js';
import { runConcurrently } from '../src/runConcurrently.js';

let gateway: RunningGateway;
const TARGETS = ['gateway', 'front door'] as const;
type Target = (typeof TARGETS)[number];
const urlOf = (target: Target) => (target === 'gateway' ? gateway.url : gateway.frontDoorUrl);

beforeAll(async () => {
  gateway = await startGateway();
});
afterAll(async () => {
  await gateway?.close();
});

function bodyOf(exchange: RawExchange): string {
  return exchange.text.slice(exchange.text.indexOf('\r\n\r\n') + 4);
}

function errorOf(exchange: RawExchange): { code: string; message: string } {
  return (JSON.parse(bodyOf(exchange)) as { error: { code: string; message: string } }).error;
}

const fillers = (n: number) => Array.from({ length: n }, (_, i) => `x:${i % 10}\r\n`).join('');

describe('more header lines than the guard can see', () => {
  describe.each(TARGETS)('%s', target => {
    it.each([
      ['a second Host', 'Host: evil.example\r\n', ''],
      ['Transfer-Encoding: gzip, chunked', 'Transfer-Encoding: gzip, chunked\r\n', '0\r\n\r\n'],
      ['nothing (fillers only)', '', ''],
    ])('2 100 fillers with %s behind them: 431 TOO_MANY_HEADERS', async (_name, hidden, body) => {
      const answer = await rawExchange(urlOf(target), [
        `POST /api/search?q=lamp HTTP/1.1\r\nHost: localhost\r\n${fillers(2_100)}${hidden}\r\n${body}`,
      ]);
      expect(answer.statuses).toEqual([431]);
      expect(errorOf(answer)).toMatchObject({
        code: 'TOO_MANY_HEADERS',
        message: expect.stringContaining('expected at most 1000'),
      });
    });

    it('the same hidden header in a short request is still refused (400), 998 fillers are served', async () => {
      const smuggled = await rawExchange(urlOf(target), [
        `GET /catalog/info HTTP/1.1\r\nHost: localhost\r\n${fillers(20)}Host: evil.example\r\n\r\n`,
      ]);
      expect(smuggled.statuses).toEqual([400]);
      const fine = await rawExchange(
        urlOf(target),
        [
          `GET /catalog/info HTTP/1.1\r\nHost: localhost\r\n${fillers(998)}Connection: close\r\n\r\n`,
        ],
        { timeoutMs: 10_000 },
      );
      expect(fine.statuses).toEqual([200]);
    });
  });
});

describe('client mistakes are 4xx with a stable code, upstream trouble 5xx (not 500)', () => {
  const admin = (method: string, path: string, body: string, extra: string[] = []) =>
    [
      `${method} /_x/admin${path} HTTP/1.1`,
      'Host: localhost',
      `Authorization: Bearer ${gateway.token}`,
      'Content-Type: application/json',
      'Connection: close',
      ...extra,
      '',
      body,
    ].join('\r\n');

  it('/api/report-jobs/% (bad percent-encoding): 400 INVALID_REQUEST naming the field', async () => {
    for (const id of ['%', '%E0%A4%A', 'a%zz']) {
      const answer = await rawExchange(gateway.url, [
        `GET /api/report-jobs/${id} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`,
      ]);
      expect(answer.statuses, id).toEqual([400]);
      expect(errorOf(answer)).toMatchObject({
        code: 'INVALID_REQUEST',
        message: expect.stringContaining('report job id'),
      });
    }
  });

  it.each([
    ['declared (Content-Length)', 'content-length'],
    ['chunked', 'chunked'],
  ])('an admin body over 64 KiB, %s: 413 PAYLOAD_TOO_LARGE, not 502 EPIPE', async (_name, how) => {
    const big = `{"instances":1,"pad":"${'x'.repeat(256 * 1024)}"}`;
    const framing =
      how === 'chunked'
        ? ['Transfer-Encoding: chunked']
        : [`Content-Length: ${Buffer.byteLength(big)}`];
    const payload =
      how === 'chunked' ? `${Buffer.byteLength(big).toString(16)}\r\n${big}\r\n0\r\n\r\n` : big;
    for (let i = 0; i < 5; i++) {
      const answer = await rawExchange(
        gateway.url,
        [admin('PUT', '/modules/catalog/versions/v1/instances', payload, framing)],
        { timeoutMs: 10_000 },
      );
      expect(answer.statuses).toEqual([413]);
      expect(errorOf(answer).code).toBe('PAYLOAD_TOO_LARGE');
    }
    expect(await gateway.instances('catalog')).toHaveLength(3);
  });

  it.each([['1e9'], ['-1'], ['2.5'], ['"3"']])(
    'admin {"instances": %s}: 400 INVALID_REQUEST naming instances and the value',
    async value => {
      const body = `{"instances":${value}}`;
      for (const target of TARGETS) {
        const answer = await rawExchange(urlOf(target), [
          admin('PUT', '/modules/catalog/versions/v1/instances', body, [
            `Content-Length: ${body.length}`,
          ]),
        ]);
        expect(answer.statuses, target).toEqual([400]);
        const error = errorOf(answer);
        expect(error.code).toBe('INVALID_REQUEST');
        expect(error.message).toContain('instances');
        expect(error.message).toContain(String(JSON.parse(value)));
      }
      expect(await gateway.instances('catalog')).toHaveLength(3);
    },
  );
});

describe('admin token guessing is locked out per client address', () => {
  it('wrong tokens at full speed: 10 answered 403, the rest 429 with Retry-After; other addresses unaffected', async () => {
    const attempts = sized({ quick: 1_000, long: 4_500 });
    const attacker = '127.0.0.3';
    const bystander = '127.0.0.4';
    const get = async (pool: Pool, url: string, token: string) => {
      const res = await pool.request({
        method: 'GET',
        path: `${new URL(url).pathname.replace(/\/$/, '')}/_x/admin/modules`,
        headers: { authorization: `Bearer ${token}` },
      });
      await res.body.text();
      return { status: res.statusCode, retryAfter: res.headers['retry-after'] };
    };
    const attackPools = TARGETS.map(
      target =>
        new Pool(new URL(urlOf(target)).origin, { connections: 16, localAddress: attacker }),
    );
    const bystanderPool = new Pool(new URL(gateway.url).origin, { localAddress: bystander });
    try {
      // the right token first, many times: successes never count toward the lockout
      for (let i = 0; i < 30; i++)
        expect((await get(attackPools[0]!, gateway.url, gateway.token)).status).toBe(200);
      const counts: Record<number, number> = {};
      const retryAfters = new Set<string>();
      const started = performance.now();
      await runConcurrently(attempts, 32, async i => {
        const target = i % 2;
        const answer = await get(
          attackPools[target]!,
          urlOf(TARGETS[target]!),
          `wrong-${i}-0123456789abcdef`,
        );
        counts[answer.status] = (counts[answer.status] ?? 0) + 1;
        if (answer.status === 429) retryAfters.add(String(answer.retryAfter));
      });
      const seconds = (performance.now() - started) / 1000;
      recordFigure({
        section: 'security',
        name: `admin lockout: ${attempts} wrong tokens from one address (gateway and front door), answered 403 / 429`,
        value: `${counts[403] ?? 0} / ${counts[429] ?? 0} in ${seconds.toFixed(1)} s`,
        target: '<= 10 / the rest',
      });
      expect(counts[403]).toBeLessThanOrEqual(10);
      expect(counts[429]).toBe(attempts - (counts[403] ?? 0));
      for (const value of retryAfters) expect(Number(value)).toBeGreaterThanOrEqual(1);
      // locked out: the right token waits too (the answer must not tell a guess apart)
      expect((await get(attackPools[0]!, gateway.url, gateway.token)).status).toBe(429);
      // another client address is not affected
      expect((await get(bystanderPool, gateway.url, gateway.token)).status).toBe(200);
      expect((await get(bystanderPool, gateway.url, 'wrong-bystander-0123456789')).status).toBe(
        403,
      );
    } finally {
      await Promise.all([...attackPools, bystanderPool].map(pool => pool.close()));
    }
  });
});

describe('upstream trouble is 502/503/504, never 500', () => {
  it('a report call whose worker dies (worker-rpc UNAVAILABLE) answers 503, and calls while no worker runs answer 5xx but not 500', async () => {
    const slow = (ms: number) =>
      fetch(`${gateway.url}api/reports`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ kind: 'sales', rows: 1, delayMs: ms }),
      }).then(async res => ({
        status: res.status,
        body: (await res.json()) as { error?: { code: string } },
      }));
    const pids = await gateway.instancePids('reports');
    expect(pids.length).toBeGreaterThan(0);
    const inFlight = [slow(3_000), slow(3_000), slow(3_000), slow(3_000)];
    await new Promise(resolve => setTimeout(resolve, 500));
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    const answers = await Promise.all(inFlight);
    const after = await Promise.all([slow(0), slow(0), slow(0)]);
    const statuses = [...answers, ...after].map(a => `${a.status} ${a.body.error?.code ?? ''}`);
    recordFigure({
      section: 'faults',
      name: 'gateway: report calls when every reports worker is SIGKILLed, answers',
      value: statuses.join(', '),
      target: '502/503/504, no 500',
    });
    expect(answers.some(a => a.status === 503 && a.body.error?.code === 'UNAVAILABLE')).toBe(true);
    for (const a of [...answers, ...after]) {
      expect(a.status).not.toBe(500);
      expect([200, 502, 503, 504]).toContain(a.status);
    }
  });
});
