/**
 * Security, HTTP: request smuggling, header injection, oversized heads and bodies, slow clients,
 * forged X-Forwarded-For and path traversal, sent as raw bytes to the gateway as deployed (its
 * CLI as a child process) and to the dispatcher front door behind it. A recording backend
 * (module `echo`, a remote instance) shows what reached the instances.
 */
import { startTestServer, type TestServer } from '@x/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordFigure } from '../src/figures.js';
import { startGateway, type RunningGateway } from '../src/gateway.js';
import { sized } from '../src/profile.js';
import { rawExchange, type RawExchange } from '../src/rawHttp.js';
import { summarize } from '../src/stats.js';

const HEADERS_TIMEOUT_MS = 1_000;
const REQUEST_TIMEOUT_MS = 2_000;
/** Node looks for expired requests every headersTimeout / 4 (250 ms); the rest is scheduling slack. */
const SLACK_MS = 1_250;
const MIB = 1024 * 1024;

let backend: TestServer;
let gateway: RunningGateway;
const TARGETS = ['gateway', 'front door'] as const;
type Target = (typeof TARGETS)[number];
const urlOf = (target: Target) => (target === 'gateway' ? gateway.url : gateway.frontDoorUrl);

/** Attacks tried and refused, per category (the figures). */
const tally = new Map<string, { tried: number; refused: number }>();
function count(category: string, refused: boolean): void {
  const entry = tally.get(category) ?? { tried: 0, refused: 0 };
  entry.tried++;
  if (refused) entry.refused++;
  tally.set(category, entry);
}

/** The JSON error code of the first response, if it has a JSON body. */
function errorCode(exchange: RawExchange): string | undefined {
  const end = exchange.text.indexOf('\r\n\r\n');
  const length = /\r\ncontent-length: *(\d+)/i.exec(exchange.text.slice(0, end))?.[1];
  if (end < 0 || length === undefined) return undefined;
  try {
    const body = exchange.text.slice(end + 4, end + 4 + Number(length));
    return (JSON.parse(body) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}

/**
 * One answer with `status` and the connection closed. The front door always answers JSON with
 * `code`; the gateway does when its own guard refuses, Node's parser answers a bare status line.
 */
function expectRefused(exchange: RawExchange, target: Target, status: number, code: string) {
  expect(exchange.statuses).toEqual([status]);
  expect(exchange.closed).toBe(true);
  const found = errorCode(exchange);
  if (target === 'front door' || found !== undefined) expect(found).toBe(code);
}

/** Requests of the recording backend whose target contains `marker`. */
const reached = (marker: string) => backend.requests.filter(r => r.url.includes(`/${marker}/`));

beforeAll(async () => {
  backend = await startTestServer();
  gateway = await startGateway({
    config: {
      server: { headersTimeoutMs: HEADERS_TIMEOUT_MS, requestTimeoutMs: REQUEST_TIMEOUT_MS },
      modules: { echo: { versions: { v1: { backend: { remote: [backend.url] } } } } },
      dispatch: [
        { url: '*/echo/*', module: 'echo' },
        { url: '*/catalog/*', module: 'catalog' },
        { url: '*/orders/*', module: 'orders' },
      ],
    },
  });
});

afterAll(async () => {
  for (const [category, { tried, refused }] of tally)
    recordFigure({
      section: 'security',
      name: `${category}: attacks refused / tried`,
      value: `${refused} / ${tried}`,
      target: 'all',
    });
  await gateway?.close();
  await backend?.close();
});

const smuggled = (m: string) => `GET /echo/${m}/smuggled HTTP/1.1\r\nHost: x\r\n\r\n`;
const chunkedThen = (m: string) => `\r\n0\r\n\r\n${smuggled(m)}`;

/** [name, request for a marker]: each must be answered 400 and never reach an instance. */
const SMUGGLING: Array<[string, (m: string) => string]> = [
  [
    'CL.TE: Content-Length and Transfer-Encoding',
    m =>
      `POST /echo/${m}/a HTTP/1.1\r\nHost: x\r\nContent-Length: ${chunkedThen(m).length - 2}\r\nTransfer-Encoding: chunked\r\n${chunkedThen(m)}`,
  ],
  [
    'TE.CL: Transfer-Encoding and Content-Length',
    m =>
      `POST /echo/${m}/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n${chunkedThen(m)}`,
  ],
  [
    'duplicate Content-Length, different values',
    m =>
      `POST /echo/${m}/a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: ${smuggled(m).length}\r\n\r\n${smuggled(m)}`,
  ],
  [
    'duplicate Content-Length, same value',
    m =>
      `POST /echo/${m}/a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc${smuggled(m)}`,
  ],
  [
    'Content-Length list "3, 30"',
    m => `POST /echo/${m}/a HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 30\r\n\r\nabc${smuggled(m)}`,
  ],
  [
    'Content-Length "+3"',
    m => `POST /echo/${m}/a HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc${smuggled(m)}`,
  ],
  [
    'Transfer-Encoding: xchunked',
    m =>
      `POST /echo/${m}/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n${chunkedThen(m)}`,
  ],
  [
    'Transfer-Encoding: chunked, identity',
    m =>
      `POST /echo/${m}/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n${chunkedThen(m)}`,
  ],
  [
    'Transfer-Encoding: identity, chunked',
    m =>
      `POST /echo/${m}/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity, chunked\r\n${chunkedThen(m)}`,
  ],
  [
    'Transfer-Encoding: gzip',
    m => `POST /echo/${m}/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n${smuggled(m)}`,
  ],
  [
    'space before the colon ("Transfer-Encoding : chunked")',
    m =>
      `POST /echo/${m}/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n${chunkedThen(m)}`,
  ],
  [
    'two Transfer-Encoding headers (chunked, identity)',
    m =>
      `POST /echo/${m}/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n${chunkedThen(m)}`,
  ],
  [
    'two Transfer-Encoding headers (chunked twice)',
    m =>
      `POST /echo/${m}/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n${chunkedThen(m)}`,
  ],
  [
    'Transfer-Encoding folded onto a second line',
    m =>
      `POST /echo/${m}/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: x\r\n chunked\r\n${chunkedThen(m)}`,
  ],
  [
    'chunk size "zz"',
    m =>
      `POST /echo/${m}/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n${smuggled(m)}`,
  ],
  [
    'chunk size "-3"',
    m =>
      `POST /echo/${m}/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n${smuggled(m)}`,
  ],
  [
    'chunk size "0x3"',
    m =>
      `POST /echo/${m}/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n${smuggled(m)}`,
  ],
  [
    'chunk size overflowing 64 bits',
    m =>
      `POST /echo/${m}/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000003\r\nabc\r\n0\r\n\r\n${smuggled(m)}`,
  ],
  [
    'chunk extension with a bare LF',
    m =>
      `POST /echo/${m}/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;\nx\r\nabc\r\n0\r\n\r\n${smuggled(m)}`,
  ],
  [
    'chunks ended by bare LFs',
    m =>
      `POST /echo/${m}/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\n0\n\n${smuggled(m)}`,
  ],
  [
    'chunk data longer than its size',
    m =>
      `POST /echo/${m}/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n${smuggled(m)}`,
  ],
  [
    'two Host headers',
    m => `GET /echo/${m}/a HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n${smuggled(m)}`,
  ],
  [
    'absolute-form target',
    m => `GET http://evil.example/echo/${m}/a HTTP/1.1\r\nHost: x\r\n\r\n${smuggled(m)}`,
  ],
  ['asterisk target', m => `OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n${smuggled(m)}`],
];

/** [name, request]: CR / LF / NUL where a header could be injected; 400, nothing forwarded. */
const INJECTION: Array<[string, (m: string) => string]> = [
  [
    'CR in a header value',
    m => `GET /echo/${m}/a HTTP/1.1\r\nHost: x\r\nX-A: a\rX-Injected: 1\r\n\r\n`,
  ],
  [
    'LF in a header value',
    m => `GET /echo/${m}/a HTTP/1.1\r\nHost: x\r\nX-A: a\nX-Injected: 1\r\n\r\n`,
  ],
  [
    'NUL in a header value',
    m => `GET /echo/${m}/a HTTP/1.1\r\nHost: x\r\nX-A: a\0X-Injected: 1\r\n\r\n`,
  ],
  [
    'obsolete line folding',
    m => `GET /echo/${m}/a HTTP/1.1\r\nHost: x\r\nX-A: a\r\n X-Injected: 1\r\n\r\n`,
  ],
  [
    'header line without a colon',
    m => `GET /echo/${m}/a HTTP/1.1\r\nHost: x\r\nX-Injected 1\r\n\r\n`,
  ],
  [
    'CR LF in the request target',
    m => `GET /echo/${m}/a\r\nX-Injected: 1 HTTP/1.1\r\nHost: x\r\n\r\n`,
  ],
  ['LF in the request target', m => `GET /echo/${m}/a\nX-Injected: 1 HTTP/1.1\r\nHost: x\r\n\r\n`],
  ['CR in the request target', m => `GET /echo/${m}/a\rX-Injected: 1 HTTP/1.1\r\nHost: x\r\n\r\n`],
  ['space in the request target', m => `GET /echo/${m}/a X-Injected:1 HTTP/1.1\r\nHost: x\r\n\r\n`],
  ['CR LF in the method', m => `GET\r\nX-Injected: 1 /echo/${m}/a HTTP/1.1\r\nHost: x\r\n\r\n`],
];

let marker = 0;

describe.each(TARGETS)('%s', target => {
  describe('request smuggling: 400, connection closed, nothing reaches an instance', () => {
    it.each(SMUGGLING)('%s', async (_name, request) => {
      const m = `s${++marker}`;
      const answer = await rawExchange(urlOf(target), [request(m)]);
      count('request smuggling', answer.statuses.join() === '400' && answer.closed);
      expectRefused(answer, target, 400, 'INVALID_REQUEST');
      expect(reached(m)).toEqual([]);
    });
  });

  describe('header injection: 400, connection closed, nothing reaches an instance', () => {
    it.each(INJECTION)('%s', async (_name, request) => {
      const m = `i${++marker}`;
      const answer = await rawExchange(urlOf(target), [request(m)]);
      count('header injection', answer.statuses.join() === '400' && answer.closed);
      expectRefused(answer, target, 400, 'INVALID_REQUEST');
      expect(reached(m)).toEqual([]);
      expect(backend.requests.some(r => 'x-injected' in r.headers)).toBe(false);
    });

    it('percent-encoded CR LF stays encoded in the forwarded target: no header is injected', async () => {
      const m = `i${++marker}`;
      const target_ = `/echo/${m}/%0d%0aX-Injected:%201?q=%0D%0ASet-Cookie:%20injected=1`;
      const answer = await rawExchange(urlOf(target), [
        `GET ${target_} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
      ]);
      const injected = /\r\n(x-injected|set-cookie):/i.test(answer.text);
      count('header injection', answer.statuses.join() === '200' && !injected);
      expect(answer.statuses).toEqual([200]);
      expect(injected).toBe(false);
      const seen = reached(m);
      expect(seen.map(r => r.url)).toEqual([target_]);
      expect(seen[0]!.headers).not.toHaveProperty('x-injected');
    });
  });

  describe('oversized heads: 431, connection closed', () => {
    it.each([
      [
        'one 20 KiB header',
        (m: string) =>
          `GET /echo/${m}/a HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_480)}\r\n\r\n`,
      ],
      [
        '200 headers of 100 bytes',
        (m: string) =>
          `GET /echo/${m}/a HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 200 }, (_, i) => `X-H${i}: ${'b'.repeat(100)}\r\n`).join('')}\r\n`,
      ],
      [
        'a 20 KiB request target',
        (m: string) => `GET /echo/${m}/${'c'.repeat(20_480)} HTTP/1.1\r\nHost: x\r\n\r\n`,
      ],
      [
        'a 20 KiB cookie',
        (m: string) =>
          `GET /echo/${m}/a HTTP/1.1\r\nHost: x\r\nCookie: k=${'d'.repeat(20_480)}\r\n\r\n`,
      ],
    ])('%s', async (_name, request) => {
      const m = `h${++marker}`;
      const answer = await rawExchange(urlOf(target), [request(m)]);
      count('oversized heads', answer.statuses.join() === '431' && answer.closed);
      expectRefused(answer, target, 431, 'HEADERS_TOO_LARGE');
      expect(reached(m)).toEqual([]);
    });
  });

  describe('oversized bodies: 413, never forwarded whole', () => {
    it('a declared Content-Length over 32 MiB: 413 before the body is read', async () => {
      const m = `b${++marker}`;
      const answer = await rawExchange(
        urlOf(target),
        [`POST /echo/${m}/a HTTP/1.1\r\nHost: x\r\nContent-Length: ${64 * MIB}\r\n\r\nabc`],
        { responses: 1 },
      );
      count('oversized bodies', answer.statuses.join() === '413');
      expect(answer.statuses).toEqual([413]);
      expect(errorCode(answer)).toBe('PAYLOAD_TOO_LARGE');
      expect(reached(m)).toEqual([]);
    });

    it('a chunked body over 32 MiB: 413 or the upload is cut, the instance never gets it', async () => {
      const m = `b${++marker}`;
      const chunk = Buffer.concat([
        Buffer.from(`${MIB.toString(16)}\r\n`),
        Buffer.alloc(MIB, 97),
        Buffer.from('\r\n'),
      ]);
      const answer = await rawExchange(
        urlOf(target),
        [
          `POST /echo/${m}/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n`,
          ...Array.from({ length: 34 }, () => chunk),
          '0\r\n\r\n',
        ],
        { responses: 1, timeoutMs: 10_000 },
      );
      const refused =
        answer.statuses.join() === '413' || (answer.statuses.length === 0 && answer.closed);
      count('oversized bodies', refused);
      expect(refused).toBe(true);
      if (answer.statuses.length > 0) expect(errorCode(answer)).toBe('PAYLOAD_TOO_LARGE');
      expect(reached(m)).toEqual([]);
    });
  });

  describe('path traversal and admin path confusion: no file and no admin data', () => {
    it.each([
      '/_x/../../etc/passwd',
      '/_x/%2e%2e/%2e%2e/etc/passwd',
      '/_x/..%2f..%2fgateway.config.yaml',
      '/_x/index.html/../../package.json',
      '/_x/%2e%2e%2fpackage.json',
      '/_x/dashboard.html',
      '/_x//etc/passwd',
      '/api/../_x/admin/modules',
      '//_x/admin/modules',
      '/_x/admin%2fmodules',
      '/_X/admin/modules',
      '/_x/state/../admin/modules',
    ])('GET %s', async path => {
      const answer = await rawExchange(urlOf(target), [
        `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
      ]);
      const status = answer.statuses[0] ?? 0;
      const leaked = /root:|"name":\s*"@x\/gateway"|dispatch:|"modules":\[/.test(answer.text);
      count('path traversal', [400, 401, 404].includes(status) && !leaked);
      expect([400, 401, 404]).toContain(status);
      expect(leaked).toBe(false);
    });
  });
});

describe('forged X-Forwarded-For from a client', () => {
  it('is dropped: the instance sees the real peer address and protocol', async () => {
    const m = `x${++marker}`;
    const answer = await rawExchange(
      gateway.url,
      [
        `GET /echo/${m}/a HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nConnection: close\r\n\r\n`,
      ],
      { localAddress: '127.0.0.2' },
    );
    expect(answer.statuses).toEqual([200]);
    const headers = reached(m)[0]?.headers ?? {};
    const hops = String(headers['x-forwarded-for']).split(/,\s*/);
    count('forged X-Forwarded-For', hops[0] === '127.0.0.2' && !hops.includes('6.6.6.6'));
    expect(answer.localAddress).toBe('127.0.0.2');
    // the client as the gateway saw it: the front door is mounted on the gateway's server, so
    // there is no second hop (a proxy in between would have added 127.0.0.1)
    expect(hops).toEqual(['127.0.0.2']);
    expect(headers['x-forwarded-proto']).toBe('http');
  });
});

describe('gateway routes with small body limits', () => {
  it.each([
    [
      'POST /api/reports, declared 20 KiB',
      `POST /api/reports HTTP/1.1\r\nHost: x\r\nContent-Length: 20480\r\n\r\n{"kind":"sales"`,
    ],
    [
      'POST /api/reports, chunked 20 KiB',
      `POST /api/reports HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5000\r\n${'a'.repeat(0x5000)}\r\n0\r\n\r\n`,
    ],
    [
      'POST /api/report-jobs, declared 20 KiB',
      `POST /api/report-jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 20480\r\n\r\n{"kind":"sales"`,
    ],
  ])('%s: 413 PAYLOAD_TOO_LARGE', async (_name, request) => {
    const answer = await rawExchange(gateway.url, [request], { responses: 1 });
    count('oversized bodies', answer.statuses.join() === '413');
    expect(answer.statuses).toEqual([413]);
    expect(errorCode(answer)).toBe('PAYLOAD_TOO_LARGE');
  });

  it.each([
    '/api/search?q=%0d%0aX-Injected:%201',
    '/api/orders/1%0d%0aX-Injected:%201',
    '/api/report-jobs/%0d%0aX-Injected:%201',
  ])('GET %s: answered without a server error, nothing injected', async path => {
    const answer = await rawExchange(gateway.url, [
      `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
    ]);
    const status = answer.statuses[0] ?? 0;
    const injected = /\r\nx-injected:/i.test(answer.text);
    // upstream trouble on a loaded machine (a 503 or 504 with a typed error) is not a server
    // error of the gateway's; a 500, an untyped 5xx or an injected header is
    const upstream = (status === 503 || status === 504) && errorCode(answer) !== undefined;
    const ok = status > 0 && (status < 500 || upstream) && !injected;
    count('header injection', ok);
    expect(status).toBeGreaterThan(0);
    if (!upstream) expect(status).toBeLessThan(500);
    expect(injected).toBe(false);
  });
});

describe('slow clients: 408 or closed within the timeout, others still served', () => {
  const trickle = (text: string, times: number, everyMs: number) =>
    Array.from({ length: times }, () => [everyMs, text]).flat();
  /** [name, target, parts, deadline (ms after connecting)]; all run at once. */
  const SLOW: Array<[string, Target, Array<string | number>, number]> = TARGETS.flatMap(target => [
    ['idle connection (no byte sent)', target, [], HEADERS_TIMEOUT_MS + SLACK_MS] as const,
    [
      'slowloris: one header line every 200 ms',
      target,
      ['GET /echo/slow/a HTTP/1.1\r\nHost: x\r\n', ...trickle('X-A: 1\r\n', 40, 200)],
      HEADERS_TIMEOUT_MS + SLACK_MS,
    ] as const,
    [
      'slow body: one byte every 200 ms',
      target,
      [
        'POST /echo/slow/b HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n',
        ...trickle('a', 40, 200),
      ],
      REQUEST_TIMEOUT_MS + SLACK_MS,
    ] as const,
    [
      'slowloris on a kept-alive connection',
      target,
      [
        'GET /echo/slow/c HTTP/1.1\r\nHost: x\r\n\r\n',
        300,
        'GET /echo/slow/d HTTP/1.1\r\n',
        ...trickle('X-A: 1\r\n', 40, 200),
      ],
      300 + HEADERS_TIMEOUT_MS + SLACK_MS,
    ] as const,
  ]).map(([name, target, parts, deadline]) => [`${target}: ${name}`, target, [...parts], deadline]);
  SLOW.push([
    'gateway: slow body to POST /api/reports',
    'gateway',
    [
      'POST /api/reports HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n',
      ...trickle('a', 40, 200),
    ],
    REQUEST_TIMEOUT_MS + SLACK_MS,
  ]);
  const crowd = sized({ quick: 20, long: 200 });
  const results = new Map<string, Promise<RawExchange>>();
  let crowdResults: RawExchange[] = [];
  const served: number[] = [];
  let failures = 0;

  beforeAll(async () => {
    for (const [name, target, parts] of SLOW)
      results.set(name, rawExchange(urlOf(target), parts, { timeoutMs: 10_000 }));
    const crowdDone = Promise.all(
      Array.from({ length: crowd }, (_, i) =>
        rawExchange(
          urlOf(TARGETS[i % 2]!),
          ['GET /echo/slow/e HTTP/1.1\r\nHost: x\r\n', ...trickle('X-A: 1\r\n', 40, 200)],
          { timeoutMs: 10_000 },
        ),
      ),
    );
    // meanwhile: ordinary requests through the gateway, one after another
    const until = performance.now() + REQUEST_TIMEOUT_MS + SLACK_MS;
    while (performance.now() < until) {
      const started = performance.now();
      const res = await fetch(`${gateway.url}echo/slow/ok`).catch(() => undefined);
      if (res?.status === 200) served.push(performance.now() - started);
      else failures++;
      await res?.text();
    }
    crowdResults = await crowdDone;
    await Promise.all(results.values());
  });

  it.each(SLOW)('%s', async (_name, _target, _parts, deadlineMs) => {
    const answer = await results.get(_name)!;
    const refused =
      answer.closed &&
      answer.elapsedMs <= deadlineMs &&
      (answer.statuses.at(-1) === 408 || answer.statuses.every(s => s === 200));
    count('slow clients', refused);
    expect(answer.closed).toBe(true);
    expect(answer.elapsedMs).toBeLessThanOrEqual(deadlineMs);
    // the kept-alive connection got its first answer; the slow request itself 408 (or a bare close)
    expect(answer.statuses.filter(s => s !== 200).every(s => s === 408)).toBe(true);
    expect(answer.statuses.at(-1) ?? 408).toBe(408);
  });

  it(`${crowd} slowloris connections at once are all closed in time, and others are served meanwhile`, () => {
    const closeMs = summarize(crowdResults.map(r => r.elapsedMs));
    const latency = summarize(served);
    recordFigure({
      section: 'security',
      name: `slowloris: ${crowd} connections closed (408) after ms, p50 / max`,
      value: `${closeMs.p50} / ${closeMs.max}`,
      target: `<= ${HEADERS_TIMEOUT_MS + SLACK_MS} (headersTimeoutMs ${HEADERS_TIMEOUT_MS})`,
    });
    recordFigure({
      section: 'security',
      name: 'slowloris: other requests served meanwhile (ok / failed, p99 ms)',
      value: `${served.length} / ${failures}, ${latency.p99.toFixed(1)}`,
      target: '0 failed',
    });
    expect(crowdResults.every(r => r.closed && r.statuses.every(s => s === 408))).toBe(true);
    expect(closeMs.max).toBeLessThanOrEqual(HEADERS_TIMEOUT_MS + SLACK_MS);
    expect(failures).toBe(0);
    expect(served.length).toBeGreaterThan(5);
  });
});

describe('the recording backend, after every attack', () => {
  it('never received a smuggled, injected or refused request', () => {
    expect(backend.requests.filter(r => r.url.includes('smuggled'))).toEqual([]);
    expect(
      backend.requests.filter(r => /\/[sihb]\d+\//.test(r.url) && !r.url.includes('%0d%0a')),
    ).toEqual([]);
    expect(backend.requests.some(r => 'x-injected' in r.headers)).toBe(false);
  });
});
