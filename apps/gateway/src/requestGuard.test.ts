import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RequestGuard } from './requestGuard.js';

/** Sends raw bytes, returns everything the server answered before it closed the connection. */
async function raw(port: number, text: string): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  socket.write(text);
  let out = '';
  socket.setEncoding('latin1').on('data', (chunk: string) => (out += chunk));
  socket.setTimeout(2_000, () => socket.destroy());
  await once(socket, 'close');
  return out;
}

describe('requestRefusal', () => {
  let server: Server;
  let port: number;
  const seen: string[] = [];

  beforeAll(async () => {
    const guard = new RequestGuard();
    server = createServer((req, res) => {
      if (guard.ignore(req)) return void req.resume();
      const refusal = guard.refuse(req);
      seen.push(`${req.url} ${refusal?.message ?? 'ok'}`);
      res.writeHead(refusal?.status ?? 200, { connection: 'close' });
      res.end(refusal ? `${refusal.code} ${refusal.message}` : 'ok');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => server.close());

  it.each([
    [
      'a CR LF in the request target (HTTP/0.9)',
      'GET /t\r\nX-Injected: 1 HTTP/1.1\r\nHost: x\r\n\r\n',
      'unsupported HTTP version 0.9',
    ],
    [
      'HTTP/2.0 on an HTTP/1 connection',
      'GET /t HTTP/2.0\r\nHost: x\r\n\r\n',
      'unsupported HTTP version 2.0',
    ],
    [
      'TE: identity, chunked',
      'POST /t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n',
      'unsupported Transfer-Encoding (only chunked)',
    ],
    [
      'two TE headers',
      'POST /t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      'unsupported Transfer-Encoding (only chunked)',
    ],
    [
      'two Host headers',
      'GET /t HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n',
      'more than one Host header',
    ],
    [
      'an absolute-form target',
      'GET http://evil/t HTTP/1.1\r\nHost: x\r\n\r\n',
      'request target must be a path (origin-form)',
    ],
    [
      'an asterisk target',
      'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n',
      'request target must be a path (origin-form)',
    ],
  ])('refuses %s', async (_name, request, reason) => {
    const answer = await raw(port, request);
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toContain(reason);
  });

  it('serves nothing pipelined behind a refused request (the smuggled one)', async () => {
    const answer = await raw(
      port,
      'POST /first HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n' +
        'GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n',
    );
    expect(answer.match(/HTTP\/1\.1 \d{3}/g)).toEqual(['HTTP/1.1 400']);
    expect(seen.at(-1)).toBe('/first unsupported Transfer-Encoding (only chunked)');
    expect(seen.some(line => line.startsWith('/smuggled'))).toBe(false);
  });

  const fillers = (n: number) => Array.from({ length: n }, (_, i) => `x:${i % 10}\r\n`).join('');

  it.each([
    ['a second Host', 'Host: y\r\n'],
    ['Transfer-Encoding: gzip, chunked', 'Transfer-Encoding: gzip, chunked\r\n'],
    ['nothing else', ''],
  ])('refuses 2 100 header lines (431) with %s hidden behind them', async (_name, hidden) => {
    const answer = await raw(
      port,
      `GET /many HTTP/1.1\r\nHost: x\r\n${fillers(2_100)}${hidden}\r\n` +
        (hidden.startsWith('Transfer') ? '0\r\n\r\n' : ''),
    );
    expect(answer).toMatch(/^HTTP\/1\.1 431 /);
    expect(answer).toContain('TOO_MANY_HEADERS too many header lines: expected at most 1000');
  });

  it('accepts 999 header lines', async () => {
    expect(await raw(port, `GET /ok HTTP/1.1\r\nHost: x\r\n${fillers(998)}\r\n`)).toMatch(
      /^HTTP\/1\.1 200 /,
    );
  });

  it('accepts HTTP/1.0, HTTP/1.1 and chunked bodies (any case)', async () => {
    for (const request of [
      'GET /a HTTP/1.0\r\n\r\n',
      'GET /b HTTP/1.1\r\nHost: x\r\n\r\n',
      'POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n1\r\na\r\n0\r\n\r\n',
    ])
      expect(await raw(port, request)).toMatch(/^HTTP\/1\.1 200 /);
    expect(seen.slice(-3)).toEqual(['/a ok', '/b ok', '/c ok']);
  });
});
