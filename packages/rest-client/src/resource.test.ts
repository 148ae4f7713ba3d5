import diagnosticsChannel from 'node:diagnostics_channel';
import { gzipSync } from 'node:zlib';
import { captureWarnings, startTestServer, freePort, waitFor, type TestServer } from '@x/testkit';
import { isXError, ManualClock } from '@x/resilience';
import { afterEach, describe, expect, it } from 'vitest';
import { Resource } from './resource.js';
import {
  isRestClientError,
  type HttpStatusError,
  type SocketError,
  type RequestTimeoutError,
} from './errors.js';
import type { RestClientEvent } from './events.js';

const open: Array<{ close(): Promise<void> }> = [];
function track<T extends { close(): Promise<void> }>(value: T): T {
  open.push(value);
  return value;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map(x => x.close()));
});

async function server(options?: Parameters<typeof startTestServer>[0]): Promise<TestServer> {
  return track(await startTestServer(options));
}

describe('Resource: lupyne API', () => {
  it('get/delete put the query in the URL and return the decoded JSON body', async () => {
    const s = await server();
    const r = track(new Resource(s.url));
    await expect(
      r.get('/items', { q: 'a b', id: [1, 2], skip: undefined, on: true }),
    ).resolves.toEqual({ ok: true, path: '/items' });
    expect(s.requests[0]!.url).toBe('/items?q=a+b&id=1&id=2&on=true');
    await r.delete('/items/1', { force: 1 });
    expect(s.requests[1]!.method).toBe('DELETE');
    expect(s.requests[1]!.url).toBe('/items/1?force=1');
  });

  it('post/put/patch send JSON and return the decoded body', async () => {
    const s = await server(req => ({ status: 201, body: { got: req.json, method: req.method } }));
    const r = track(new Resource(s.url));
    await expect(r.post('/x', { a: 1 })).resolves.toEqual({ got: { a: 1 }, method: 'POST' });
    await expect(r.put('/x', [1, 2])).resolves.toEqual({ got: [1, 2], method: 'PUT' });
    await expect(r.patch('/x', 'text')).resolves.toEqual({ got: 'text', method: 'PATCH' });
    expect(s.requests[0]!.headers['content-type']).toBe('application/json');
    await r.post('/empty');
    expect(s.requests[3]!.body.length).toBe(0);
  });

  it('call returns a Response with status, reason, headers, decoded body, ok and time; never throws on status', async () => {
    const s = await server({
      status: 404,
      headers: { 'x-response-time': '12.5ms' },
      body: { missing: true },
    });
    const r = track(new Resource(s.url));
    const response = await r.call('GET', '/nope');
    expect(response.status).toBe(404);
    expect(response.reason).toBe('Not Found');
    expect(response.ok).toBe(false);
    expect(response.body).toEqual({ missing: true });
    expect(response.headers['content-type']).toBe('application/json');
    expect(response.time).toBe(12.5);
    expect(response.host).toBe(s.url);
    expect(response.attempts).toBe(1);
    expect(() => response.value()).toThrow(
      expect.objectContaining({
        code: 'HTTP_ERROR',
        status: 404,
        reason: 'Not Found',
        body: { missing: true },
      }),
    );
    s.setScript({
      body: 'plain',
      headers: { 'content-type': 'text/plain', 'x-response-time': '0.25' },
    });
    const text = await r.call('GET', '/text');
    expect(text.ok).toBe(true);
    expect(text.value()).toBe('plain');
    expect(text.time).toBe(250); // a bare number is seconds (lupyne's servers)
  });

  it('verb methods throw HttpStatusError with status, reason and the decoded body', async () => {
    const s = await server({ status: 400, body: { error: 'bad' } });
    const r = track(new Resource(s.url));
    const error = (await r.get('/x').catch(e => e)) as HttpStatusError;
    expect(isRestClientError(error, 'HTTP_ERROR')).toBe(true);
    expect(isXError(error)).toBe(true);
    expect(error).toMatchObject({
      status: 400,
      reason: 'Bad Request',
      body: { error: 'bad' },
      method: 'GET',
      path: '/x',
      host: s.url,
    });
    expect(error.response.status).toBe(400);
    expect(s.requestCount).toBe(1); // 400 is not retried
  });

  it('decodes gzip bodies and asks for compression when configured', async () => {
    const payload = gzipSync(JSON.stringify({ zipped: true }));
    const s = await server({
      body: payload,
      headers: { 'content-encoding': 'gzip', 'content-type': 'application/json' },
    });
    const r = track(new Resource(s.url, { compress: true }));
    await expect(r.get('/z')).resolves.toEqual({ zipped: true });
    expect(s.requests[0]!.headers['accept-encoding']).toContain('gzip');
  });

  it('decode modes: text, bytes, json', async () => {
    const s = await server({ body: '{"a":1}', headers: { 'content-type': 'text/plain' } });
    const r = track(new Resource(s.url));
    await expect(r.get('/x')).resolves.toBe('{"a":1}');
    await expect(r.get('/x', undefined, { decode: 'json' })).resolves.toEqual({ a: 1 });
    const bytes = await r.get<Uint8Array>('/x', undefined, { decode: 'bytes' });
    expect(Buffer.from(bytes).toString()).toBe('{"a":1}');
  });
});

describe('Resource: bad responses and bad input', () => {
  it('malformed JSON gives DECODE with a snippet; the connection is reused', async () => {
    const s = await server({
      body: '{"broken": tru',
      headers: { 'content-type': 'application/json' },
    });
    const r = track(new Resource(s.url, { connections: 1 }));
    const error = (await r.get('/x').catch(e => e)) as Error;
    expect(error).toMatchObject({ code: 'DECODE', snippet: '{"broken": tru', status: 200 });
    expect(error.message).toContain('{\\"broken\\": tru');
    s.setScript({ body: { fine: 1 } });
    await expect(r.get('/x')).resolves.toEqual({ fine: 1 });
    expect(s.totalConnections).toBe(1);
  });

  it('an error status with a malformed JSON body keeps the text', async () => {
    const s = await server({
      status: 502,
      body: '<html>bad gateway</html>',
      headers: { 'content-type': 'application/json' },
    });
    const r = track(new Resource(s.url, { retry: false }));
    const error = (await r.get('/x').catch(e => e)) as HttpStatusError;
    expect(error.code).toBe('HTTP_ERROR');
    expect(error.body).toBe('<html>bad gateway</html>');
  });

  it('a body over maxResponseSize is cut off with RESPONSE_TOO_LARGE (with and without content-length)', async () => {
    const big = 'x'.repeat(5000);
    const s = await server({ body: big, headers: { 'content-type': 'text/plain' } });
    const r = track(new Resource(s.url, { maxResponseSize: 1000 }));
    await expect(r.get('/big')).rejects.toMatchObject({ code: 'RESPONSE_TOO_LARGE', limit: 1000 });
    s.setScript({
      body: big,
      headers: { 'content-type': 'text/plain', 'transfer-encoding': 'chunked' },
    });
    await expect(r.get('/chunked')).rejects.toMatchObject({ code: 'RESPONSE_TOO_LARGE' });
    s.setScript({ body: gzipSync(big), headers: { 'content-encoding': 'gzip' } });
    await expect(r.get('/bomb')).rejects.toMatchObject({ code: 'RESPONSE_TOO_LARGE' });
    s.setScript({ body: 'small' });
    await expect(r.get('/ok')).resolves.toBe('small');
  });

  it('rejects absolute URLs, scheme-relative paths and dot segments without sending anything', async () => {
    const s = await server();
    const r = track(new Resource(s.url));
    for (const path of [
      'http://evil.example/x',
      '//evil.example/x',
      'relative',
      '/a/../b',
      '/%2e%2e/etc',
      '/a b',
      '/a#frag',
      '',
      '/a\\b',
    ]) {
      await expect(r.get(path), path).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
    }
    await expect(r.call('GET /x', '/')).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
    await expect(r.post('/x', { big: 10n })).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
    await expect(r.get('/x', { a: { nested: 1 } as never })).rejects.toMatchObject({
      code: 'INVALID_REQUEST',
    });
    await expect(r.get('/x', undefined, { headers: { 'bad header': 'x' } })).rejects.toMatchObject({
      code: 'INVALID_REQUEST',
    });
    await expect(r.get('/x', undefined, { timeout: -1 })).rejects.toMatchObject({
      code: 'INVALID_REQUEST',
    });
    expect(s.requestCount).toBe(0);
    expect(() => new Resource('not a host/with/path')).toThrow(TypeError);
    expect(() => new Resource(s.url, { connections: 0 })).toThrow(RangeError);
  });

  it('connection refused is CONNECT and is retried (nothing was sent), then given up', async () => {
    const port = await freePort();
    const events: RestClientEvent[] = [];
    const r = track(
      new Resource(`127.0.0.1:${port}`, { retry: { maxRetries: 2, backoff: undefined } }),
    );
    r.onEvent(e => events.push(e));
    const error = (await r.post('/x', { a: 1 }).catch(e => e)) as Error;
    expect(error).toMatchObject({ code: 'CONNECT', attempts: 3 });
    expect((error.cause as { code: string }).code).toBe('ECONNREFUSED');
    expect(events.filter(e => e.type === 'retry')).toHaveLength(2);
  });

  it('garbage is SOCKET and a reset POST is not retried', async () => {
    const s = await server({ garbage: true });
    const r = track(new Resource(s.url));
    await expect(r.get('/x')).rejects.toMatchObject({ code: 'SOCKET' });
    expect(s.requestCount).toBe(3); // GET retried twice
    s.resetStats();
    s.setScript({ reset: true });
    await expect(r.post('/x', {})).rejects.toMatchObject({ code: 'SOCKET', idempotent: false });
    expect(s.requestCount).toBe(1);
  });

  it('a truncated body is SOCKET after the headers', async () => {
    const s = await server({ truncate: true, body: { a: 1 } });
    const r = track(new Resource(s.url, { retry: false }));
    await expect(r.get('/x')).rejects.toMatchObject({ code: 'SOCKET', stale: false });
  });
});

describe('Resource: deadlines and cancellation', () => {
  it('total timeout covers a hanging server and frees the connection', async () => {
    const s = await server({ hang: true });
    const r = track(new Resource(s.url, { timeout: 80, retry: false }));
    const started = performance.now();
    const error = (await r.get('/x').catch(e => e)) as RequestTimeoutError;
    expect(error).toMatchObject({
      code: 'TIMEOUT',
      phase: 'total',
      timeoutMs: 80,
      scope: 'operation',
    });
    expect(performance.now() - started).toBeLessThan(2000);
    expect(r.stats().inFlight).toBe(0);
  });

  it('per-try timeout: a slow body is cut off; not retried unless retryOnTimeout', async () => {
    const s = await server([{ slowBodyMs: 500, body: { slow: true } }, { body: { fast: true } }]);
    const r = track(new Resource(s.url, { timeout: { total: 5000, perTry: 60 } }));
    await expect(r.get('/x')).rejects.toMatchObject({
      code: 'TIMEOUT',
      phase: 'try',
      scope: 'attempt',
    });
    s.setScript([{ delayMs: 500 }, { body: { fast: true } }]);
    const retrying = track(
      new Resource(s.url, {
        timeout: { total: 5000, perTry: 60 },
        retry: { retryOnTimeout: true },
      }),
    );
    await expect(retrying.get('/x')).resolves.toEqual({ fast: true });
  });

  it('a request queued behind busy connections settles at its own deadline, or its abort', async () => {
    // undici notices an abort only when a connection takes the request (nodejs/undici#386).
    const s = await server({ hang: true });
    const r = track(new Resource(s.url, { connections: 1, retry: false }));
    const busy = r.get('/busy', undefined, { timeout: 1_000 }).catch(e => e);
    await s.waitForRequests(1);
    let started = performance.now();
    await expect(r.get('/queued', undefined, { timeout: 100 })).rejects.toMatchObject({
      code: 'TIMEOUT',
      timeoutMs: 100,
    });
    expect(performance.now() - started).toBeLessThan(400);
    started = performance.now();
    await expect(
      r.get('/queued', undefined, { signal: AbortSignal.abort('gone') }),
    ).rejects.toMatchObject({ code: 'ABORTED' });
    const controller = new AbortController();
    const pending = r.get('/queued', undefined, { signal: controller.signal });
    setTimeout(() => controller.abort('user left'), 30);
    await expect(pending).rejects.toMatchObject({ code: 'ABORTED', reason: 'user left' });
    expect(performance.now() - started).toBeLessThan(400);
    expect(await busy).toMatchObject({ code: 'TIMEOUT' });
    expect(s.requests.map(req => req.path)).toEqual(['/busy']);
    expect(r.stats().inFlight).toBe(0);
  });

  it('a per-call timeout overrides the client one', async () => {
    const s = await server({ delayMs: 300 });
    const r = track(new Resource(s.url, { timeout: 10_000 }));
    await expect(r.get('/x', undefined, { timeout: 50 })).rejects.toMatchObject({
      code: 'TIMEOUT',
      timeoutMs: 50,
    });
  });

  it('the caller signal aborts with ABORTED and its reason; an AbortSignal.timeout gives TIMEOUT', async () => {
    const s = await server({ delayMs: 1000 });
    const r = track(new Resource(s.url));
    const controller = new AbortController();
    const pending = r.get('/x', undefined, { signal: controller.signal });
    setTimeout(() => controller.abort('user left'), 30);
    await expect(pending).rejects.toMatchObject({ code: 'ABORTED', reason: 'user left' });
    await expect(
      r.get('/x', undefined, { signal: AbortSignal.abort('early') }),
    ).rejects.toMatchObject({ code: 'ABORTED' });
    await expect(r.get('/x', undefined, { signal: AbortSignal.timeout(30) })).rejects.toMatchObject(
      { code: 'TIMEOUT' },
    );
  });

  it('retry backoff runs on the injected clock and is cut short by an abort', async () => {
    const s = await server({ status: 503 });
    const clock = new ManualClock();
    const r = track(
      new Resource(s.url, { clock, retry: { maxRetries: 3 }, timeout: { total: 60_000 } }),
    );
    const controller = new AbortController();
    const pending = r.get('/x', undefined, { signal: controller.signal }).catch(e => e);
    await s.waitForRequests(1);
    await new Promise(resolve => setTimeout(resolve, 20));
    expect(s.requestCount).toBe(1); // waiting for a backoff that only the manual clock can end
    controller.abort();
    expect(await pending).toMatchObject({ code: 'ABORTED' });
  });
});

describe('Resource: durations (issue 12)', () => {
  it('timeout: 1e12 (client and call) and 3e9 mean no limit: the call succeeds, no TimeoutOverflowWarning', async () => {
    const s = await server({ script: { delayMs: 60, body: { ok: true } } });
    const warnings = captureWarnings();
    const r = track(new Resource(s.url, { timeout: 1e12 }));
    await expect(r.get('/x')).resolves.toMatchObject({ ok: true });
    await expect(r.get('/x', undefined, { timeout: 3e9 })).resolves.toMatchObject({ ok: true });
    await expect(
      r.get('/x', undefined, { timeout: { total: 1e12, perTry: 1e12 } }),
    ).resolves.toMatchObject({ ok: true });
    expect((await warnings.stop()).map(w => w.name)).not.toContain('TimeoutOverflowWarning');
  });

  it('timeout: "300", NaN and -1 are INVALID_REQUEST naming the field, on the client and per call', async () => {
    const s = await server();
    const r = track(new Resource(s.url));
    for (const [timeout, received] of [
      ['300', '"300"'],
      [Number.NaN, 'NaN'],
      [-1, '-1'],
    ] as const) {
      expect(() => new Resource(s.url, { timeout: timeout as never })).toThrow(
        expect.objectContaining({
          code: 'INVALID_REQUEST',
          message: `timeout: expected a number of ms > 0 and <= 2147483647, or Infinity (above: no limit), received ${received}`,
        }),
      );
      await expect(r.get('/x', undefined, { timeout: timeout as never })).rejects.toMatchObject({
        code: 'INVALID_REQUEST',
        message: expect.stringMatching(/^timeout: expected .* received /),
      });
    }
    await expect(
      r.get('/x', undefined, { timeout: { total: 100, perTry: '5' as never } }),
    ).rejects.toThrow(/timeout.perTry: expected .* received "5"/);
    expect(() => new Resource(s.url, { keepAliveTimeoutMs: 3e9 })).toThrow(
      /keepAliveTimeoutMs: expected .* received 3000000000/,
    );
    expect(s.requestCount).toBe(0);
  });
});

describe('Resource: stale keep-alive replay', () => {
  /** Closes the server's idle connections exactly when undici writes the next request on one. */
  function raceIdleClose(s: TestServer, path: string): () => void {
    const channel = diagnosticsChannel.channel('undici:client:sendHeaders');
    let armed = true;
    const listener = (message: unknown) => {
      const { request } = message as { request: { path: string } };
      if (armed && request.path === path) {
        armed = false;
        s.closeIdleConnections();
      }
    };
    channel.subscribe(listener);
    return () => channel.unsubscribe(listener);
  }

  it('a GET on a connection the server closed while idle is replayed once at once on a fresh connection', async () => {
    const s = await server();
    const r = track(new Resource(s.url, { connections: 1, retry: false }));
    const events: RestClientEvent[] = [];
    r.onEvent(e => events.push(e));
    await r.get('/warm');
    expect(s.totalConnections).toBe(1);
    const stop = raceIdleClose(s, '/stale');
    try {
      await expect(r.get('/stale')).resolves.toEqual({ ok: true, path: '/stale' });
    } finally {
      stop();
    }
    expect(s.totalConnections).toBe(2);
    expect(s.requests.filter(q => q.path === '/stale')).toHaveLength(1);
    const replays = events.filter(e => e.type === 'replay');
    expect(replays).toHaveLength(1);
    expect(replays[0]).toMatchObject({
      method: 'GET',
      path: '/stale',
      error: { code: 'SOCKET', stale: true },
    });
    expect(r.stats().replays).toBe(1);
  });

  it('a POST on such a connection is not replayed: SOCKET (stale) reaches the caller', async () => {
    const s = await server();
    const r = track(new Resource(s.url, { connections: 1 }));
    const events: RestClientEvent[] = [];
    r.onEvent(e => events.push(e));
    await r.get('/warm');
    const stop = raceIdleClose(s, '/stale');
    let error: SocketError;
    try {
      error = (await r.post('/stale', { once: true }).catch(e => e)) as SocketError;
    } finally {
      stop();
    }
    expect(error).toMatchObject({ code: 'SOCKET', stale: true, idempotent: false });
    expect(events.filter(e => e.type === 'replay' || e.type === 'retry')).toHaveLength(0);
    expect(s.requests.filter(q => q.path === '/stale')).toHaveLength(0);
  });

  it('with an idempotency key the POST is replayed', async () => {
    const s = await server();
    const r = track(new Resource(s.url, { connections: 1, retry: false }));
    const events: RestClientEvent[] = [];
    r.onEvent(e => events.push(e));
    await r.get('/warm');
    const stop = raceIdleClose(s, '/stale');
    try {
      await expect(
        r.post('/stale', { once: true }, { idempotencyKey: 'k-1' }),
      ).resolves.toMatchObject({ ok: true });
    } finally {
      stop();
    }
    expect(s.requests.at(-1)!.headers['idempotency-key']).toBe('k-1');
    expect(events.filter(e => e.type === 'replay')).toHaveLength(1);
  });

  it('a 408 is replayed once for any method, and only once', async () => {
    const s = await server([{ status: 408 }, { body: { second: true } }]);
    const r = track(new Resource(s.url));
    await expect(r.post('/x', { a: 1 })).resolves.toEqual({ second: true });
    expect(s.requestCount).toBe(2);
    s.resetStats();
    s.setScript({ status: 408 });
    await expect(r.post('/x', {})).rejects.toMatchObject({ code: 'HTTP_ERROR', status: 408 });
    expect(s.requestCount).toBe(2);
  });

  it('a server resetting every connection: a GET is replayed at most once, a POST never', async () => {
    const s = await server({ reset: true });
    const r = track(new Resource(s.url, { retry: false }));
    const events: RestClientEvent[] = [];
    r.onEvent(e => events.push(e));
    await expect(r.get('/x')).rejects.toMatchObject({ code: 'SOCKET' });
    expect(events.filter(e => e.type === 'replay').length).toBeLessThanOrEqual(1);
    expect(s.requestCount).toBe(1 + events.filter(e => e.type === 'replay').length);
    s.resetStats();
    await expect(r.post('/x', {})).rejects.toMatchObject({ code: 'SOCKET' });
    expect(s.requestCount).toBe(1);
  });
});

describe('Resource: streaming, limits and lifecycle', () => {
  it('stream returns the body as a stream and keeps the deadline until it ends', async () => {
    const s = await server({ body: 'abc'.repeat(1000), headers: { 'content-type': 'text/plain' } });
    const r = track(new Resource(s.url));
    const response = await r.stream('GET', '/file');
    expect(response.status).toBe(200);
    expect(r.stats().inFlight).toBe(1);
    let text = '';
    for await (const chunk of response.body) text += String(chunk);
    expect(text).toBe('abc'.repeat(1000));
    await new Promise(resolve => setImmediate(resolve));
    expect(r.stats().inFlight).toBe(0);
    s.setScript({ slowBodyMs: 1000, body: 'late' });
    const slow = await r.stream('GET', '/slow', { timeout: 80 });
    await expect(async () => {
      for await (const _chunk of slow.body) void _chunk;
    }).rejects.toMatchObject({ code: 'TIMEOUT' });
  });

  it('maxPending bounds the requests waiting for a connection', async () => {
    const s = await server({ delayMs: 150 });
    const r = track(new Resource(s.url, { connections: 1, maxPending: 2 }));
    const calls = Array.from({ length: 5 }, () =>
      r.get('/x').then(
        () => 'ok',
        (e: { code: string }) => e.code,
      ),
    );
    const results = await Promise.all(calls);
    expect(results.filter(x => x === 'ok')).toHaveLength(3);
    expect(results.filter(x => x === 'QUEUE_FULL')).toHaveLength(2);
    expect(s.maxInFlight).toBe(1);
  });

  it('close lets running calls finish, then refuses new ones with CLOSED; destroy fails them', async () => {
    const s = await server({ delayMs: 100, body: { ok: true, path: '/x' } });
    const r = new Resource(s.url);
    const running = r.get('/x');
    const closing = r.close();
    await expect(r.get('/y')).rejects.toMatchObject({ code: 'CLOSED' });
    await expect(running).resolves.toEqual({ ok: true, path: '/x' });
    await closing;
    expect(r.closed).toBe(true);
    const d = new Resource(s.url);
    const hanging = d.get('/z');
    await s.waitForRequests(2);
    await d.destroy();
    await expect(hanging).rejects.toMatchObject({ code: 'CLOSED' });
  });

  it('supports await using', async () => {
    const s = await server();
    {
      await using r = new Resource(s.url);
      await r.get('/x');
      expect(s.connections).toBe(1);
    }
    await waitFor(() => s.connections === 0, {
      timeoutMs: 2_000,
      message: 'the pool closed its connections',
    });
  });
});

describe('Resource: property tests against a real server', () => {
  it('any path/query either reaches the server verbatim or fails with a typed error, never a crash or a hang', async () => {
    const { default: fc } = await import('fast-check');
    const s = await server();
    const r = track(new Resource(s.url, { retry: false, timeout: 2_000 }));
    const path = fc.oneof(
      fc.string({ maxLength: 30 }),
      fc.string({ maxLength: 20 }).map(x => `/${x}`),
      fc
        .array(fc.constantFrom('a', '..', '.', '%2e', 'b c', 'é', '?', '#', '//', 'x=1'), {
          maxLength: 5,
        })
        .map(parts => `/${parts.join('/')}`),
      fc.constantFrom('http://evil/', '//evil', '/ok', '/a?b=c'),
    );
    await fc.assert(
      fc.asyncProperty(
        path,
        fc.option(
          fc.dictionary(
            fc.string({ maxLength: 5 }),
            fc.oneof(fc.string({ maxLength: 5 }), fc.integer(), fc.anything()),
          ),
          { nil: undefined },
        ),
        async (p, q) => {
          const before = s.requestCount;
          try {
            const response = await r.call('GET', p, { query: q as never });
            const received = s.requests.at(-1)!;
            return (
              response.status === 200 &&
              s.requestCount === before + 1 &&
              received.url.startsWith(p.split('?')[0]!)
            );
          } catch (error) {
            return isRestClientError(error, 'INVALID_REQUEST') && s.requestCount === before;
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('Resource: regressions', () => {
  it('a repeated Content-Type header decodes by the first one, not a SOCKET error from a TypeError', async () => {
    const { createServer } = await import('node:http');
    const http = createServer((_req, res) => {
      res.writeHead(200, ['content-type', 'application/json', 'content-type', 'text/plain']);
      res.end('{"a":1}');
    });
    await new Promise<void>(resolve => http.listen(0, '127.0.0.1', resolve));
    track({ close: () => new Promise<void>(resolve => http.close(() => resolve())) });
    const { port } = http.address() as { port: number };
    const r = track(new Resource(`http://127.0.0.1:${port}`, { retry: false }));
    await expect(r.get('/x')).resolves.toEqual({ a: 1 });
    const response = await r.call('GET', '/x', { decode: 'bytes' });
    expect(Buffer.from(response.body as Uint8Array).toString()).toBe('{"a":1}');
  });
});

describe('Resource: the eager body read (the try is the undici dispatch handler)', () => {
  it('joins a body sent in several chunks, skips a UTF-8 BOM, ignores 103 Early Hints, reads HEAD', async () => {
    const { createServer } = await import('node:http');
    const big = { items: Array.from({ length: 2_000 }, (_, i) => ({ i, name: `héllo ${i}` })) };
    const http = createServer((req, res) => {
      if (req.url === '/bom') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"bom":true}')]));
        return;
      }
      if (req.url === '/hints') res.writeEarlyHints({ link: '</style.css>; rel=preload' });
      res.writeHead(200, { 'content-type': 'application/json', 'x-kind': 'chunked' });
      const text = JSON.stringify(big);
      if (req.method === 'HEAD') {
        res.end();
        return;
      }
      // several writes, some after a pause: several chunks on the client
      res.write(text.slice(0, 10));
      setTimeout(() => {
        res.write(text.slice(10, 20_000));
        res.end(text.slice(20_000));
      }, 5);
    });
    await new Promise<void>(resolve => http.listen(0, '127.0.0.1', resolve));
    track({ close: () => new Promise<void>(resolve => http.close(() => resolve())) });
    const { port } = http.address() as { port: number };
    const r = track(new Resource(`http://127.0.0.1:${port}`, { retry: false }));
    await expect(r.get('/big')).resolves.toEqual(big);
    await expect(r.get('/bom')).resolves.toEqual({ bom: true });
    const hinted = await r.call('GET', '/hints');
    expect(hinted.status).toBe(200);
    expect(hinted.headers['x-kind']).toBe('chunked');
    expect(hinted.body).toEqual(big);
    const head = await r.call('HEAD', '/big');
    expect(head.status).toBe(200);
    expect(head.body).toBeUndefined();
    const bytes = await r.get<Uint8Array>('/big', undefined, { decode: 'bytes' });
    expect(JSON.parse(Buffer.from(bytes).toString('utf8'))).toEqual(big);
    expect(r.stats()).toMatchObject({ requests: 5, failures: 0, inFlight: 0 });
  });
});

describe('lupyne migration: Resource(host, port), request/getresponse, limit=0', () => {
  it("takes lupyne's Resource(host, port) form; a bad port is refused naming it", async () => {
    const s = await server({ body: { ok: 1 } });
    const port = Number(new URL(s.url).port);
    const r = track(new Resource('127.0.0.1', port, { timeout: 5_000 }));
    expect(r.host).toBe(s.url);
    expect(await r.get('/x')).toEqual({ ok: 1 });
    expect(() => new Resource('127.0.0.1', 0)).toThrow(
      /port must be an integer from 1 to 65535, got 0/,
    );
    expect(() => new Resource('127.0.0.1:80', 8080)).toThrow(
      /with a port, host must be a bare host name or address, got "127.0.0.1:80"/,
    );
  });

  it("request() sends at once and getresponse() collects the Response (lupyne's Resource.request/getresponse)", async () => {
    const s = await server({ status: 503, body: { busy: true } });
    const r = track(new Resource(s.url));
    const pending = r.request('GET', '/a');
    expect(pending).toMatchObject({ host: s.url, method: 'GET', path: '/a' });
    const response = await r.getresponse(pending);
    expect(response.status).toBe(503); // never throws on status, never retried
    expect(s.requestCount).toBe(1);
  });

  it("keepAlive: false is lupyne's limit=0: one connection per request", async () => {
    const s = await server({ body: { ok: 1 } });
    const closing = track(new Resource(s.url, { keepAlive: false }));
    for (let i = 0; i < 5; i++) await closing.get('/x');
    // no connection serves two requests (a GET retried after a race with the server's close
    // adds a request and its own connection)
    expect(s.requestCount).toBeGreaterThanOrEqual(5);
    expect(s.totalConnections).toBe(s.requestCount);
    const t = await server({ body: { ok: 1 } });
    const reusing = track(new Resource(t.url));
    for (let i = 0; i < 5; i++) await reusing.get('/x');
    expect(t.totalConnections).toBeLessThan(5); // kept alive and reused
  });
});
