import { once } from 'node:events';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import {
  createServer as createTcpServer,
  type AddressInfo,
  type Server as TcpServer,
  type Socket,
} from 'node:net';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { Resource, type DecodeMode } from '@x/rest-client';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BAD_INPUT_TIMEOUT_MS,
  BadInputTally,
  recordHeapGrowth,
  xErrorCodes,
} from '../src/badInputTally.js';
import { heapAfterGc, heapGrowthMbSince } from '../src/heap.js';
import { mutatedBytes, mutatedString } from '../src/mutate.js';
import { sized } from '../src/profile.js';

// Bad input for @x/rest-client response decoding. Its decoder is internal, so responses come from
// real loopback servers: a node:http server answering any status, content type, content encoding
// and body (10 000 cases), and a raw TCP server answering arbitrary bytes. A call gives a Response
// (or a value) or a typed error, never a crash, a hang or a body beyond maxResponseSize.

const RUNS = sized({ quick: 10_000, long: 100_000 });
const RAW_RUNS = sized({ quick: 1_000, long: 10_000 });
const MAX_RESPONSE = 65_536;
/** What a well-formed response can cost a call: never SOCKET, which blames the connection. */
const DECODING_CODES = ['HTTP_ERROR', 'DECODE', 'RESPONSE_TOO_LARGE'];

interface Answer {
  status: number;
  headers: [string, string][];
  body: Uint8Array;
}

const json = fc.jsonValue({ maxDepth: 3 }).map(v => JSON.stringify(v) ?? 'null');
const JSON_TRAPS = ['{', '}', '[', ']', '"', ',', '\\', '\\ud800', '1e999', '\0', '\ufeff'];
const plain = fc.oneof(
  json.map(t => new Uint8Array(Buffer.from(t))),
  mutatedString(json, JSON_TRAPS).map(t => new Uint8Array(Buffer.from(t))),
  fc.uint8Array({ maxLength: 200 }),
  fc.constant(new Uint8Array(0)),
);
const ENCODERS: Record<string, (b: Uint8Array) => Uint8Array> = {
  gzip: b => gzipSync(b),
  'x-gzip': b => gzipSync(b),
  deflate: b => deflateSync(b),
  br: b => brotliCompressSync(b),
};
const BOMB = gzipSync(Buffer.alloc(8 * MAX_RESPONSE));

/** `body` compressed with each coding of `encoding` in order, as a server does; undefined for an unknown coding. */
function encodeBody(body: Uint8Array, encoding: string): Uint8Array | undefined {
  let out = body;
  for (const coding of encoding.split(',').map(s => s.trim())) {
    if (coding === '' || coding === 'identity') continue;
    const encode = ENCODERS[coding];
    if (!encode) return undefined;
    out = encode(out);
  }
  return out;
}
const encoding = fc.constantFrom(
  '',
  '',
  'identity',
  'gzip',
  'x-gzip',
  'deflate',
  'br',
  'gzip, br',
  'zstd',
  'GZIP',
);
const contentType = fc.constantFrom(
  'application/json',
  'application/json; charset=utf-8',
  'application/problem+json',
  'text/x-json',
  'text/plain',
  'application/jsonp',
  '',
);
const answer: fc.Arbitrary<Answer> = fc
  .record({
    status: fc.oneof(
      { arbitrary: fc.constantFrom(200, 201, 204), weight: 3 },
      { arbitrary: fc.integer({ min: 200, max: 599 }), weight: 2 },
    ),
    types: fc.array(contentType, { maxLength: 2 }), // none, one, or a repeated header
    encoding,
    body: plain,
    compression: fc.constantFrom('valid', 'valid', 'mutated', 'bomb', 'none'),
  })
  .chain(a => {
    const encoded =
      a.compression === 'bomb'
        ? BOMB
        : a.compression === 'none'
          ? a.body
          : (encodeBody(a.body, a.encoding) ?? a.body);
    const body =
      a.compression === 'mutated' ? mutatedBytes(fc.constant(encoded)) : fc.constant(encoded);
    return body.map(bytes => {
      const headers: [string, string][] = a.types.map(t => ['content-type', t]);
      if (a.encoding) headers.push(['content-encoding', a.encoding]);
      return { status: a.status, headers, body: bytes };
    });
  });

/** Raw response texts: well-formed, mutated, informational, chunked, lying about their length. */
const rawResponse = fc.oneof(
  answer.map(
    a =>
      `HTTP/1.1 ${a.status} X\r\n${a.headers.map(([n, v]) => `${n}: ${v}\r\n`).join('')}content-length: ${a.body.byteLength}\r\n\r\n${Buffer.from(a.body).toString('latin1')}`,
  ),
  fc.constantFrom(
    'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort',
    'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n',
    'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
    'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}',
    'HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1\r\n\r\n{',
    'HTTP/1.1 101 Switching Protocols\r\nupgrade: x\r\n\r\n',
    'HTTP/1.1 999 Nope\r\ncontent-length: 0\r\n\r\n',
    'HTTP/1.0 200 OK\r\ncontent-type: application/json\r\n\r\n{"a":1}',
    `HTTP/1.1 200 OK\r\ncontent-length: ${MAX_RESPONSE + 1}\r\n\r\n${'x'.repeat(MAX_RESPONSE + 1)}`,
    `HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n${'10000\r\n' + 'x'.repeat(0x10000) + '\r\n'}${'10000\r\n' + 'x'.repeat(0x10000) + '\r\n'}0\r\n\r\n`,
    'HTTP/1.1 200 OK\r\nx-bad\0header: 1\r\ncontent-length: 0\r\n\r\n',
    '',
  ),
  mutatedString(
    fc.constantFrom(
      'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 7\r\n\r\n{"a":1}',
      'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n7\r\n{"a":1}\r\n0\r\n\r\n',
    ),
    [
      '\r\n',
      '\n',
      ' ',
      ':',
      '0',
      'F',
      '\0',
      'HTTP/1.1 ',
      'content-length: 9\r\n',
      'transfer-encoding: chunked\r\n',
    ],
  ),
  fc.string({ maxLength: 80, unit: 'binary' }),
);

describe('bad input: @x/rest-client response decoding', { timeout: BAD_INPUT_TIMEOUT_MS }, () => {
  let next: Answer = { status: 200, headers: [], body: new Uint8Array(0) };
  let http: HttpServer;
  let raw: TcpServer;
  let nextRaw = '';
  const sockets = new Set<Socket>();
  beforeAll(async () => {
    http = createHttpServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(next.status, next.headers.flat());
        res.end(next.body);
      });
    });
    raw = createTcpServer(socket => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {});
      let head = '';
      socket.on('data', chunk => {
        head += chunk.toString('latin1');
        if (head.includes('\r\n\r\n')) socket.end(Buffer.from(nextRaw, 'latin1'));
      });
    });
    http.listen(0, '127.0.0.1');
    raw.listen(0, '127.0.0.1');
    await Promise.all([once(http, 'listening'), once(raw, 'listening')]);
  });
  afterAll(async () => {
    http.closeAllConnections();
    for (const s of sockets) s.destroy();
    await Promise.all([new Promise(r => http.close(r)), new Promise(r => raw.close(r))]);
  });

  it(`HTTP server: ${RUNS} responses with any status, content type, encoding and body decode or fail with a typed error`, async () => {
    const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    await using client = new Resource(url, {
      retry: false,
      timeout: 2_000,
      maxResponseSize: MAX_RESPONSE,
    });
    const tally = new BadInputTally(
      'rest-client: responses from a real HTTP server',
      xErrorCodes(DECODING_CODES),
    );
    const heapBefore = await heapAfterGc();
    await fc.assert(
      fc.asyncProperty(
        answer,
        fc.constantFrom<DecodeMode>('auto', 'json', 'text', 'bytes'),
        fc.boolean(),
        async (a, decode, asValue) => {
          next = a;
          const result = await tally.runAsync(() =>
            asValue
              ? client.get('/x', undefined, { decode })
              : client.call('GET', '/x', { decode }),
          );
          if (result !== undefined && !asValue)
            expect((result as { status: number }).status).toBe(a.status);
        },
      ),
      { numRuns: RUNS, plugins: [fc.timeout(3_000)] },
    );
    const growthMb = await heapGrowthMbSince(heapBefore);
    tally.record(RUNS);
    recordHeapGrowth('rest-client:', growthMb);
    expect(tally.cases).toBeGreaterThanOrEqual(RUNS);
    for (const outcome of ['ok', 'HTTP_ERROR', 'DECODE', 'RESPONSE_TOO_LARGE'])
      expect(tally.outcomes.get(outcome), outcome).toBeGreaterThan(0);
    expect(tally.slowestMs).toBeLessThan(2_000);
    expect(growthMb).toBeLessThan(20);
  });

  it(`raw TCP server: ${RAW_RUNS} arbitrary byte answers give a response or a typed error, within the deadline`, async () => {
    const url = `http://127.0.0.1:${(raw.address() as AddressInfo).port}`;
    await using client = new Resource(url, {
      retry: false,
      timeout: 2_000,
      maxResponseSize: MAX_RESPONSE,
    });
    const tally = new BadInputTally(
      'rest-client: arbitrary bytes from a raw TCP server',
      xErrorCodes([...DECODING_CODES, 'SOCKET', 'TIMEOUT']),
    );
    await fc.assert(
      fc.asyncProperty(rawResponse, async text => {
        nextRaw = text;
        await tally.runAsync(() => client.call('GET', '/x'));
      }),
      { numRuns: RAW_RUNS, plugins: [fc.timeout(3_000)] },
    );
    tally.record(RAW_RUNS);
    expect(tally.outcomes.get('ok')).toBeGreaterThan(0);
    expect(tally.outcomes.get('SOCKET')).toBeGreaterThan(0);
    // a server that answers nothing useful costs at most the call's deadline
    expect(tally.slowestMs).toBeLessThan(2_500);
  });
});

describe('bad input: @x/rest-client durations (issue 12)', () => {
  it('property: any timeout value is a valid deadline or INVALID_REQUEST naming the field; 1e12 succeeds without TimeoutOverflowWarning', async () => {
    const server = createHttpServer((req, res) => {
      req.resume();
      req.on('end', () =>
        setTimeout(
          () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'),
          20,
        ),
      );
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    const client = new Resource(url, { retry: false });
    try {
      await expect(client.get('/', undefined, { timeout: 1e12 })).resolves.toEqual({ ok: true });
      await fc.assert(
        fc.asyncProperty(fc.oneof(fc.anything(), fc.double()), async timeout => {
          const result = await client.get('/', undefined, { timeout: timeout as never }).then(
            value => ({ value }),
            (error: unknown) => ({ error }),
          );
          if ('value' in result) return;
          const error = result.error as { code?: string; message: string };
          if (error.code === 'TIMEOUT') {
            expect(typeof timeout === 'number' || typeof timeout === 'object').toBe(true);
            return;
          }
          expect(error.code).toBe('INVALID_REQUEST');
          expect(error.message).toMatch(/^timeout(\.total|\.perTry)?: expected .*, received /);
        }),
        { numRuns: 300 },
      );
      await new Promise(resolve => setImmediate(resolve));
      expect(warnings).not.toContain('TimeoutOverflowWarning');
    } finally {
      process.off('warning', onWarning);
      await client.close();
      server.closeAllConnections();
      await new Promise(resolve => server.close(resolve));
    }
  });
});
