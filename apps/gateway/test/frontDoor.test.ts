import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { freePort } from '@x/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { json, removeConfigs, startGateway, testConfig, type RunningGateway } from './helpers.js';

afterAll(removeConfigs);

const MAX_BODY_BYTES = 4_096;

/**
 * The dispatcher's front door mounted on the gateway's own server (no proxy hop): a recording
 * `remote` instance shows what reached it, a `remote` on a closed port what an unreachable
 * instance costs.
 */
describe('the front door mounted on the gateway', () => {
  const seen: IncomingHttpHeaders[] = [];
  const bodies: number[] = [];
  const recorder: Server = createServer((req, res) => {
    seen.push(req.headers);
    let length = 0;
    req.on('data', (chunk: Buffer) => (length += chunk.length));
    req.on('end', () => {
      bodies.push(length);
      res.end('ok');
    });
  });
  let gw: RunningGateway;

  beforeAll(async () => {
    recorder.listen(0, '127.0.0.1');
    await once(recorder, 'listening');
    const port = (recorder.address() as AddressInfo).port;
    const config = testConfig();
    config.server.maxBodyBytes = MAX_BODY_BYTES;
    config.modules.echo = {
      versions: { v1: { backend: { remote: [`http://127.0.0.1:${port}`] }, healthCheck: false } },
    };
    config.modules.gone = {
      versions: {
        v1: { backend: { remote: [`http://127.0.0.1:${await freePort()}`] }, healthCheck: false },
      },
    };
    config.dispatch = [
      { url: '*/echo/*', module: 'echo' },
      { url: '*/gone/*', module: 'gone' },
      ...config.dispatch,
    ];
    gw = await startGateway(config);
  });

  afterAll(async () => {
    await gw?.process.kill('SIGKILL');
    recorder.close();
  });

  it("forwards the request id and the peer's address, never a client-sent X-Forwarded-*, Forwarded or X-Real-IP", async () => {
    const res = await fetch(`${gw.url}echo/x`, {
      headers: {
        'x-request-id': 'mounted-1',
        'x-forwarded-for': '6.6.6.6',
        'x-forwarded-proto': 'https',
        'x-forwarded-host': 'evil.example',
        'x-forwarded-port': '1',
        forwarded: 'for=6.6.6.6',
        'x-real-ip': '6.6.6.6',
        traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      },
    });
    expect(await res.text()).toBe('ok');
    expect(res.headers.get('x-request-id')).toBe('mounted-1');
    expect(res.headers.get('x-served-by')).toMatch(/^echo\/v1/);
    expect(seen.at(-1)).toMatchObject({
      'x-forwarded-for': '127.0.0.1',
      'x-forwarded-proto': 'http',
      'x-request-id': 'mounted-1',
      // the caller's trace continues; its parent is the gateway's front-door span (dashboard
      // traces are on by default)
      traceparent: expect.stringMatching(/^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/),
    });
    for (const name of ['forwarded', 'x-real-ip', 'x-forwarded-host', 'x-forwarded-port'])
      expect(seen.at(-1)).not.toHaveProperty(name);
  });

  it('a body over server.maxBodyBytes is 413 PAYLOAD_TOO_LARGE, declared or streamed, and never reaches the instance whole', async () => {
    const before = seen.length;
    const declared = await fetch(`${gw.url}echo/x`, {
      method: 'POST',
      body: 'a'.repeat(MAX_BODY_BYTES + 1),
    });
    expect(declared.status).toBe(413);
    expect(((await declared.json()) as { error: { code: string } }).error.code).toBe(
      'PAYLOAD_TOO_LARGE',
    );
    expect(seen.length).toBe(before);

    const bodiesBefore = bodies.length;
    const chunks = async function* () {
      for (let i = 0; i < 8; i++) yield new Uint8Array(1_024).fill(97);
    };
    const streamed = await fetch(`${gw.url}echo/x`, {
      method: 'POST',
      body: ReadableStream.from(chunks()),
      duplex: 'half',
    } as RequestInit);
    expect(streamed.status).toBe(413);
    expect(((await streamed.json()) as { error: { code: string } }).error.code).toBe(
      'PAYLOAD_TOO_LARGE',
    );
    await new Promise(resolve => setTimeout(resolve, 100));
    expect(bodies.slice(bodiesBefore).every(length => length <= MAX_BODY_BYTES)).toBe(true);

    const within = await fetch(`${gw.url}echo/x`, {
      method: 'POST',
      body: 'a'.repeat(MAX_BODY_BYTES),
    });
    expect(await within.text()).toBe('ok');
    expect(bodies.at(-1)).toBe(MAX_BODY_BYTES);
  });

  it('an instance that cannot be reached is a 502 JSON answer with the request id', async () => {
    const res = await json(`${gw.url}gone/x`, { headers: { 'x-request-id': 'mounted-2' } });
    expect(res.status).toBe(502);
    expect(res.headers.get('x-request-id')).toBe('mounted-2');
    expect(res.body.error.code).toEqual(expect.any(String));
  });

  it('front-door requests are one dashboard endpoint ("dispatcher"), the API paths their own', async () => {
    await fetch(`${gw.url}echo/count`).then(r => r.text());
    await fetch(`${gw.url}api/orders/7`).then(r => r.text());
    const metrics = await (await fetch(`${gw.url}metrics`)).text();
    expect(metrics).toMatch(/x_gateway_requests_total\{[^}]*endpoint="dispatcher"/);
    expect(metrics).toMatch(/x_gateway_requests_total\{[^}]*endpoint="orders"/);
    expect(metrics).not.toMatch(/x_gateway_requests_total\{[^}]*endpoint="metrics"/);
  });
});
