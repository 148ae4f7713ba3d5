import { afterEach, describe, expect, it } from 'vitest';
import { startTestServer, waitFor, type TestServer } from '@x/testkit';
import type { Dispatcher } from 'undici';
import { Http } from './http.js';
import { createAgent } from './agent.js';
import { getEventListeners } from 'node:events';
import {
  ConnectionError,
  DecodeError,
  HttpError,
  InvalidArgumentError,
  TimeoutError,
} from './errors.js';
import { errorCode, isNotSentError } from './classify.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function server(options?: Parameters<typeof startTestServer>[0]): Promise<TestServer> {
  const s = await startTestServer(options);
  cleanups.push(() => s.close());
  return s;
}

function client(context?: ConstructorParameters<typeof Http>[1]): Http {
  const agent: Dispatcher = createAgent();
  cleanups.push(() => agent.close());
  return new Http(agent, context);
}

describe('Http', () => {
  it('appends query params to the URL query', async () => {
    const s = await server();
    const http = client();
    const res = await http.request('GET', `${s.url}/items?fixed=1`, {
      query: { q: 'a b', n: 2, flag: true, skip: undefined, tag: ['x', 'y'] },
    });
    expect(res.status).toBe(200);
    await res.text();
    expect(s.requests[0]!.url).toBe('/items?fixed=1&q=a+b&n=2&flag=true&tag=x&tag=y');
    expect(res.url).toBe(`${s.url}/items?fixed=1&q=a+b&n=2&flag=true&tag=x&tag=y`);

    await (await http.get(`${s.url}/p`, { query: new URLSearchParams([['a', '1']]) })).text();
    await (await http.get(`${s.url}/p`, { query: [['b', '2']] })).text();
    expect(s.requests.slice(1).map(r => r.url)).toEqual(['/p?a=1', '/p?b=2']);
  });

  it('sends a json body with content-type, and raw bodies as is', async () => {
    const s = await server();
    const http = client();
    await (await http.post(`${s.url}/json`, { json: { id: 1, tags: ['a'] } })).text();
    expect(s.requests[0]!.method).toBe('POST');
    expect(s.requests[0]!.headers['content-type']).toBe('application/json');
    expect(s.requests[0]!.json).toEqual({ id: 1, tags: ['a'] });

    await (
      await http.request('put', `${s.url}/raw`, {
        body: 'plain text',
        headers: { 'Content-Type': 'text/plain' },
      })
    ).text();
    expect(s.requests[1]!.method).toBe('PUT');
    expect(s.requests[1]!.body.toString()).toBe('plain text');
    expect(s.requests[1]!.headers['content-type']).toBe('text/plain');

    // an explicit content-type wins over the json default
    await (
      await http.post(`${s.url}/vnd`, {
        json: [1],
        headers: { 'content-type': 'application/vnd.x+json' },
      })
    ).text();
    expect(s.requests[2]!.headers['content-type']).toBe('application/vnd.x+json');
  });

  it('sends basic auth, custom headers and the idempotency key', async () => {
    const s = await server();
    const http = client();
    await (
      await http.get(s.url, {
        auth: ['alice', 's3cret'],
        headers: { 'X-Trace': 'abc', 'X-Multi': ['1', '2'] },
      })
    ).text();
    await (await http.get(s.url, { auth: { username: 'bob', password: 'pw' } })).text();
    await (await http.post(s.url, { idempotencyKey: 'key-123' })).text();
    expect(s.requests[0]!.headers.authorization).toBe(
      `Basic ${Buffer.from('alice:s3cret').toString('base64')}`,
    );
    expect(s.requests[0]!.headers['x-trace']).toBe('abc');
    expect(s.requests[0]!.headers['x-multi']).toBe('1, 2');
    expect(s.requests[1]!.headers.authorization).toBe(
      `Basic ${Buffer.from('bob:pw').toString('base64')}`,
    );
    expect(s.requests[2]!.headers['idempotency-key']).toBe('key-123');
  });

  it('json() rejects a body that is not JSON with a typed DECODE error', async () => {
    const s = await server({ body: '{"half":', headers: { 'content-type': 'application/json' } });
    const res = await client().get(`${s.url}/x`);
    const error = await res.json().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DecodeError);
    expect(errorCode(error)).toBe('DECODE');
    expect((error as DecodeError).cause).toBeInstanceOf(SyntaxError);
  });

  it('resolves a 404 and reads its body', async () => {
    const s = await server({ status: 404, body: { error: 'not found' } });
    const res = await client().get(`${s.url}/missing`);
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toBe('application/json');
    expect(await res.json()).toEqual({ error: 'not found' });
  });

  it('throws HttpError on 500 with status, body snippet and retryAfterMs', async () => {
    const s = await server({
      status: 503,
      headers: { 'retry-after': '7' },
      body: 'overloaded, come back later',
    });
    const error = await client()
      .get(`${s.url}/busy`)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HttpError);
    expect(error).toMatchObject({
      code: 'HTTP_ERROR',
      status: 503,
      method: 'GET',
      url: `${s.url}/busy`,
      body: 'overloaded, come back later',
      retryAfterMs: 7000,
      idempotent: true,
    });
    expect((error as HttpError).headers['retry-after']).toBe('7');
  });

  it('keeps only the first 4 KiB of a large error body', async () => {
    const s = await server({ status: 500, body: 'x'.repeat(100_000) });
    const error = (await client()
      .get(s.url)
      .catch((e: unknown) => e)) as HttpError;
    expect(error.status).toBe(500);
    expect(error.body).toHaveLength(4096);
    expect(error.retryAfterMs).toBeUndefined();
  });

  it('marks a POST HttpError not idempotent, unless it carried an idempotency key', async () => {
    const s = await server({ status: 502 });
    const http = client();
    await expect(http.post(s.url)).rejects.toMatchObject({
      status: 502,
      idempotent: false,
      method: 'POST',
    });
    await expect(http.post(s.url, { idempotencyKey: 'k' })).rejects.toMatchObject({
      status: 502,
      idempotent: true,
    });
    await expect(http.request('DELETE', s.url)).rejects.toMatchObject({ idempotent: true });
  });

  it('throws on 408 and 429 by default; throwOnStatus adjusts the rule', async () => {
    const s = await server({
      routes: {
        '/408': { status: 408 },
        '/429': { status: 429 },
        '/500': { status: 500, body: 'err' },
        '/400': { status: 400 },
      },
    });
    const http = client();
    await expect(http.get(`${s.url}/408`)).rejects.toMatchObject({ status: 408 });
    await expect(http.get(`${s.url}/429`)).rejects.toMatchObject({ status: 429 });
    const res = await http.get(`${s.url}/500`, { throwOnStatus: false });
    expect(res.status).toBe(500);
    expect(await res.text()).toBe('err');
    await expect(http.get(`${s.url}/400`, { throwOnStatus: true })).rejects.toMatchObject({
      status: 400,
    });
    await expect(http.get(`${s.url}/400`, { throwOnStatus: s => s === 400 })).rejects.toMatchObject(
      { status: 400 },
    );
    const ok500 = await http.get(`${s.url}/500`, { throwOnStatus: s => s === 400 });
    expect(ok500.status).toBe(500);
    await ok500.text();
  });

  it('follows redirects by default, not with allowRedirects: false', async () => {
    const s = await server({
      routes: {
        '/old': { status: 302, headers: { location: '/new' } },
        '/new': { body: { moved: true } },
      },
    });
    const http = client();
    const followed = await http.get(`${s.url}/old`);
    expect(followed.status).toBe(200);
    expect(await followed.json()).toEqual({ moved: true });
    expect(s.requests.map(r => r.path)).toEqual(['/old', '/new']);

    const raw = await http.get(`${s.url}/old`, { allowRedirects: false });
    expect(raw.status).toBe(302);
    expect(raw.headers.location).toBe('/new');
    await raw.text();
    expect(s.requests.map(r => r.path)).toEqual(['/old', '/new', '/old']);
  });

  it('persistent: false opens and closes a connection per request', async () => {
    const s = await server();
    const http = client();
    for (let i = 0; i < 6; i++) await (await http.get(s.url, { persistent: false })).text();
    expect(s.requestCount).toBe(6);
    expect(s.totalConnections).toBe(6);
    expect(s.requests.every(r => r.headers.connection === 'close')).toBe(true);
    await waitFor(() => s.connections === 0, { message: 'the non-persistent connections closed' });
  });

  it('reuses connections by default', async () => {
    const s = await server();
    const http = client();
    for (let i = 0; i < 6; i++) await (await http.get(s.url)).text();
    expect(s.requestCount).toBe(6);
    // (undici's pool may open a second connection while the first is finishing a response)
    expect(s.totalConnections).toBeLessThanOrEqual(2);
    expect(s.requests.every(r => r.headers.connection === 'keep-alive')).toBe(true);
    expect(s.connections).toBeGreaterThan(0);
  });

  it('resolves relative URLs against the context baseUrl', async () => {
    const s = await server();
    const http = client({ baseUrl: s.url });
    const res = await http.get('/relative/path?x=1');
    expect(await res.json()).toEqual({ ok: true, path: '/relative/path' });
    expect(s.requests[0]!.url).toBe('/relative/path?x=1');
  });

  it('rejects an invalid method, URL or scheme with TypeError before sending', async () => {
    const s = await server();
    const http = client();
    await expect(http.request('GE T', s.url)).rejects.toBeInstanceOf(TypeError);
    await expect(http.request('', s.url)).rejects.toBeInstanceOf(TypeError);
    await expect(http.request('GET', 'not a url')).rejects.toBeInstanceOf(TypeError);
    await expect(http.request('GET', '/relative-without-base')).rejects.toThrow(
      /relative URLs need/,
    );
    await expect(http.request('GET', 'ftp://127.0.0.1/file')).rejects.toThrow(
      /unsupported URL scheme/,
    );
    await expect(http.request('GET', 'file:///etc/passwd')).rejects.toBeInstanceOf(TypeError);
    await expect(http.request('GET', s.url, { timeout: 0 })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    expect(s.requestCount).toBe(0);
  });

  it('bounds a request with its timeout (attempt scope) and closes the connection', async () => {
    const s = await server({ hang: true });
    const started = performance.now();
    const error = await client()
      .get(s.url, { timeout: 100 })
      .catch((e: unknown) => e);
    const elapsed = performance.now() - started;
    expect(error).toMatchObject({ code: 'TIMEOUT', scope: 'attempt', timeoutMs: 100 });
    expect(elapsed).toBeGreaterThanOrEqual(95);
    expect(elapsed).toBeLessThan(100 + 1_500);
    await waitFor(() => s.inFlight === 0, { message: 'the server saw the request end' });
  });

  it('bounds a request with the context remaining time (operation scope)', async () => {
    const s = await server({ hang: true });
    const error = await client({ remaining: () => 80 })
      .get(s.url, { timeout: 5000 })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'TIMEOUT', scope: 'operation', timeoutMs: 80 });
  });

  it('aborts with the context signal or its own signal', async () => {
    const s = await server({ hang: true });
    const context = new AbortController();
    const http = client({ signal: context.signal });
    const p = http.get(s.url);
    await s.waitForRequests(1);
    context.abort();
    await expect(p).rejects.toMatchObject({ code: 'ABORTED' });

    const own = new AbortController();
    const q = client().get(s.url, { signal: own.signal });
    await s.waitForRequests(2);
    own.abort(new Error('user cancelled'));
    await expect(q).rejects.toMatchObject({ code: 'ABORTED', cause: new Error('user cancelled') });
    await waitFor(() => s.inFlight === 0, { message: 'both requests ended on the server' });

    // already aborted: nothing is sent
    await expect(client({ signal: context.signal }).get(s.url)).rejects.toMatchObject({
      code: 'ABORTED',
    });
    expect(s.requestCount).toBe(2);
  });

  it('leaves a deadline of the context to the context signal and passes its TimeoutError through', async () => {
    const s = await server({ hang: true });
    const controller = new AbortController();
    const http = client({ signal: controller.signal, remaining: () => 50 });
    const deadline = new TimeoutError(200, 'operation');
    const timer = setTimeout(() => controller.abort(deadline), 200);
    cleanups.push(async () => clearTimeout(timer));
    const started = performance.now();
    const error = await http.get(s.url).catch((e: unknown) => e);
    expect(error).toBe(deadline);
    expect(performance.now() - started).toBeGreaterThanOrEqual(190);
    // a shorter attempt timeout still applies
    const error2 = await client({ signal: new AbortController().signal, remaining: () => 5000 })
      .get(s.url, { timeout: 50 })
      .catch((e: unknown) => e);
    expect(error2).toMatchObject({ code: 'TIMEOUT', scope: 'attempt', timeoutMs: 50 });
  });

  it('the timeout also bounds a body that stalls after the headers', async () => {
    const s = await server({ slowBodyMs: 5000, body: 'late' });
    const res = await client().get(s.url, { timeout: 150 });
    expect(res.status).toBe(200);
    const started = performance.now();
    await expect(res.text()).rejects.toMatchObject({
      code: 'TIMEOUT',
      scope: 'attempt',
      timeoutMs: 150,
    });
    expect(performance.now() - started).toBeLessThan(1000);
    await waitFor(() => s.inFlight === 0, { message: 'the stalled body was abandoned' });
  });

  it('an abort after the headers ends the body download', async () => {
    const s = await server({ slowBodyMs: 5000, body: 'late' });
    const context = new AbortController();
    const res = await client({ signal: context.signal }).get(s.url);
    const reading = res.json();
    context.abort(new Error('call over'));
    await expect(reading).rejects.toMatchObject({ code: 'ABORTED' });
    await waitFor(() => s.inFlight === 0, { message: 'the body download was aborted' });
    expect(getEventListeners(context.signal, 'abort')).toHaveLength(0);
  });

  it('leaves no abort listener behind on the context signal', async () => {
    const s = await server();
    const context = new AbortController();
    const http = client({ signal: context.signal });
    await (await http.get(s.url)).text();
    await expect((await http.get(s.url)).json()).resolves.toEqual({ ok: true, path: '/' });
    const own = new AbortController();
    own.abort();
    await expect(http.get(s.url, { signal: own.signal })).rejects.toMatchObject({
      code: 'ABORTED',
    });
    expect(getEventListeners(context.signal, 'abort')).toHaveLength(0);
  });

  it('wraps connection errors in a typed CONNECTION_ERROR that keeps their code as cause', async () => {
    const s = await server({ reset: true });
    const error = await client()
      .get(s.url)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectionError);
    expect(error).toMatchObject({ code: 'CONNECTION_ERROR', method: 'GET', idempotent: true });
    expect(errorCode((error as ConnectionError).cause)).toMatch(/ECONNRESET|UND_ERR_SOCKET/);
  });

  it('types a garbage answer, a cut body and a refused connection; a POST is not idempotent', async () => {
    const garbage = await server({ garbage: true });
    await expect(client().post(garbage.url, { json: {} })).rejects.toMatchObject({
      code: 'CONNECTION_ERROR',
      method: 'POST',
      idempotent: false,
    });
    const cut = await server({ truncate: true, body: { a: 1 } });
    const res = await client().get(cut.url);
    await expect(res.text()).rejects.toMatchObject({ code: 'CONNECTION_ERROR' });
    const port = garbage.port;
    await garbage.close();
    const refused = await client()
      .get(`http://127.0.0.1:${port}/`)
      .catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'CONNECTION_ERROR' });
    expect(isNotSentError(refused)).toBe(true);
  });
});
