import { tracingChannel } from 'node:diagnostics_channel';
import { once } from 'node:events';
import { createServer, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { endSpanOnClose } from './endSpanOnClose.js';
import { Tracer, type TraceMessage } from './tracing.js';

const CHANNEL = 'x:test:endSpanOnClose';
const tracer = new Tracer('test', CHANNEL);
const ended: TraceMessage[] = [];
const handlers = {
  start: () => {},
  end: () => {},
  asyncStart: () => {},
  asyncEnd: (m: TraceMessage) => ended.push(m),
  error: () => {},
};
tracingChannel<TraceMessage>(CHANNEL).subscribe(handlers);
afterEach(() => {
  ended.length = 0;
});
afterAll(() => tracingChannel<TraceMessage>(CHANNEL).unsubscribe(handlers));

/** A real server whose one request gets a span ended by endSpanOnClose, answered by `answer`. */
async function serveOne(answer: (res: ServerResponse) => void) {
  const server = createServer((_req, res) => {
    endSpanOnClose(tracer.start('GET /')!, res, 'gone');
    answer(res);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port };
}

async function spanOf(answer: (res: ServerResponse) => void, hangUp = false) {
  const { server, port } = await serveOne(answer);
  try {
    if (hangUp) {
      const socket = connect(port, '127.0.0.1');
      await once(socket, 'connect');
      socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      await new Promise(r => setTimeout(r, 50));
      socket.destroy();
    } else await (await fetch(`http://127.0.0.1:${port}/`)).arrayBuffer();
    const deadline = Date.now() + 5_000;
    while (ended.length === 0 && Date.now() < deadline) await new Promise(r => setTimeout(r, 10));
    return ended[0]!;
  } finally {
    server.closeAllConnections();
    server.close();
  }
}

describe('endSpanOnClose', () => {
  it('ends the span with the status, unfailed, for an answer sent whole', async () => {
    const span = await spanOf(res => res.end('ok'));
    expect(span.attributes['http.response.status_code']).toBe(200);
    expect(span.error).toBeUndefined();
  });

  it('fails it with HTTP <status> and the status as code for a 5xx', async () => {
    const span = await spanOf(res => {
      res.statusCode = 503;
      res.end();
    });
    expect(span.attributes['http.response.status_code']).toBe(503);
    expect(span.error).toMatchObject({ message: 'HTTP 503', code: '503' });
  });

  it('fails it with the given message when the client goes away before the answer', async () => {
    const span = await spanOf(() => {}, true);
    expect((span.error as Error).message).toBe('gone');
  });
});
