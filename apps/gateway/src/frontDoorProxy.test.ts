import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { frontDoorProxy, type FrontDoorProxy } from './frontDoorProxy.js';

async function listen(server: Server): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('frontDoorProxy', () => {
  const seen: IncomingHttpHeaders[] = [];
  const bodies: number[] = [];
  const upstream = createServer((req, res) => {
    seen.push(req.headers);
    let length = 0;
    req.on('data', (chunk: Buffer) => (length += chunk.length));
    req.on('end', () => {
      bodies.push(length);
      res.end('ok');
    });
  });
  let proxy: FrontDoorProxy;
  let gateway: Server;
  let url: string;

  beforeAll(async () => {
    proxy = frontDoorProxy(await listen(upstream), { maxBodyBytes: 1024 });
    gateway = createServer((req, res) => proxy(req, res, 'req-1'));
    url = await listen(gateway);
  });
  afterAll(() => {
    proxy.close();
    gateway.close();
    upstream.close();
  });

  it('forwards the peer address, never a client-sent X-Forwarded-*, Forwarded or X-Real-IP', async () => {
    const res = await fetch(`${url}/x`, {
      headers: {
        'x-forwarded-for': '6.6.6.6',
        'x-forwarded-proto': 'https',
        'x-forwarded-host': 'evil.example',
        forwarded: 'for=6.6.6.6',
        'x-real-ip': '6.6.6.6',
      },
    });
    expect(await res.text()).toBe('ok');
    expect(seen.at(-1)).toMatchObject({
      'x-forwarded-for': '127.0.0.1',
      'x-forwarded-proto': 'http',
      'x-request-id': 'req-1',
    });
    expect(seen.at(-1)).not.toHaveProperty('forwarded');
    expect(seen.at(-1)).not.toHaveProperty('x-real-ip');
    expect(seen.at(-1)).not.toHaveProperty('x-forwarded-host');
  });

  it('answers 413 to a declared body over maxBodyBytes without forwarding it', async () => {
    const before = seen.length;
    const res = await fetch(`${url}/x`, { method: 'POST', body: 'a'.repeat(1025) });
    expect(res.status).toBe(413);
    expect(res.headers.get('connection')).toBe('close');
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
      'PAYLOAD_TOO_LARGE',
    );
    expect(seen.length).toBe(before);
  });

  it('answers 413 to a streamed body once it passes maxBodyBytes; the upstream never gets it whole', async () => {
    const bodiesBefore = bodies.length;
    const chunks = async function* () {
      for (let i = 0; i < 8; i++) yield new Uint8Array(512).fill(97);
    };
    const res = await fetch(`${url}/x`, {
      method: 'POST',
      body: ReadableStream.from(chunks()),
      duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
      'PAYLOAD_TOO_LARGE',
    );
    await new Promise(resolve => setTimeout(resolve, 50));
    expect(bodies.slice(bodiesBefore).every(length => length <= 1024)).toBe(true);
  });

  it('forwards a body within maxBodyBytes', async () => {
    const res = await fetch(`${url}/x`, { method: 'POST', body: 'a'.repeat(1024) });
    expect(await res.text()).toBe('ok');
    expect(bodies.at(-1)).toBe(1024);
  });
});
