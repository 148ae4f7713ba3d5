import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ManualClock, isXError } from '@x/resilience';
import { afterEach, describe, expect, it } from 'vitest';
import { httpEntrypoint } from './httpEntrypoint.js';
import { httpRouter, HttpRouter } from './httpRouter.js';
import { route, type Route } from './route.js';
import { httpRequest } from './test/helpers.js';
import type { WorkerContext } from './workerContext.js';

const routes: Route<any, any, any, any>[] = [];
const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(routes.splice(0).map(r => r.stop({ timeoutMs: 1_000 })));
  await Promise.all(
    servers.splice(0).map(
      s =>
        new Promise<void>(resolve => {
          s.close(() => resolve());
          s.closeAllConnections();
        }),
    ),
  );
});

async function listen(handler: Parameters<typeof createServer>[1]): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** One server, one router, four entrypoints: a pattern, a wildcard, an exact path, two methods. */
async function gatewayLike() {
  const router = httpRouter();
  const seen: { params: unknown; meta: unknown }[] = [];
  const orders = httpEntrypoint({
    router,
    path: '/api/orders/:id',
    method: 'GET',
    message: 'params',
  });
  const files = httpEntrypoint({
    router,
    path: '/files/*',
    method: 'GET',
    message: (_req, _body, params) => ({ file: params['*'] }),
  });
  const search = httpEntrypoint({ router, path: '/api/search', method: 'GET', message: 'query' });
  const submit = httpEntrypoint({ router, path: '/api/orders/:id', method: ['PUT', 'DELETE'] });
  const echo = (input: unknown, ctx: WorkerContext) => {
    const http = ctx.meta.http as { params: unknown };
    seen.push({ params: input, meta: http.params });
    return { input, params: http.params };
  };
  routes.push(
    route({
      entrypoint: orders,
      translators: [
        // the request translator sees the path parameters
        (params: Readonly<Record<string, string>>) => {
          if (!/^[a-z0-9-]+$/.test(params.id ?? '')) throw new Error('bad id');
          return params;
        },
      ],
      target: echo,
    }),
    route({ entrypoint: files, target: echo }),
    route({ entrypoint: search, target: echo }),
    route({
      entrypoint: submit,
      target: (_body: Buffer, ctx) => ({ method: (ctx.meta.http as { method: string }).method }),
    }),
  );
  await Promise.all(routes.map(r => r.start()));
  const other: string[] = [];
  const url = await listen((req, res) => {
    if (router.handle(req, res)) return;
    other.push(req.url ?? '');
    res.writeHead(299).end('fallthrough');
  });
  return { url, seen, other };
}

describe('HttpRouter', () => {
  it('matches path patterns once and passes the params to the translators and the target', async () => {
    const { url, seen } = await gatewayLike();
    const answer = await httpRequest(`${url}/api/orders/ord-42?x=1`, { method: 'GET' });
    expect(answer.status).toBe(200);
    expect(answer.json()).toEqual({ input: { id: 'ord-42' }, params: { id: 'ord-42' } });
    // percent-encoded parameters are decoded
    const encoded = await httpRequest(`${url}/api/orders/a%2Db`, { method: 'GET' });
    expect(encoded.json().params).toEqual({ id: 'a-b' });
    // the translator refuses a bad id: 400, the target never ran for it
    const bad = await httpRequest(`${url}/api/orders/BAD_ID`, { method: 'GET' });
    expect(bad.status).toBe(400);
    expect(bad.json().error.code).toBe('TRANSLATION_FAILED');
    expect(seen).toHaveLength(2);
  });

  it('serves wildcards, exact paths with their query, and several methods on one pattern', async () => {
    const { url } = await gatewayLike();
    const file = await httpRequest(`${url}/files/a/b/c.txt`, { method: 'GET' });
    expect(file.json()).toEqual({ input: { file: 'a/b/c.txt' }, params: { '*': 'a/b/c.txt' } });
    const search = await httpRequest(`${url}/api/search?q=shoes&page=2`, { method: 'GET' });
    expect(search.json()).toEqual({ input: { q: 'shoes', page: '2' }, params: {} });
    const put = await httpRequest(`${url}/api/orders/7`, { method: 'PUT', body: 'x' });
    expect(put.json()).toEqual({ method: 'PUT' });
    const del = await httpRequest(`${url}/api/orders/7`, { method: 'DELETE' });
    expect(del.json()).toEqual({ method: 'DELETE' });
  });

  it('answers 405 with Allow for a known path and a wrong method; other paths fall through', async () => {
    const { url, other, seen } = await gatewayLike();
    const wrong = await httpRequest(`${url}/api/orders/7`, { method: 'POST', body: '{}' });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.allow).toBe('GET, PUT, DELETE');
    expect(wrong.json().error.code).toBe('METHOD_NOT_ALLOWED');
    const search = await httpRequest(`${url}/api/search`, { method: 'POST' });
    expect(search.status).toBe(405);
    expect(search.headers.allow).toBe('GET');
    // unknown paths (and a pattern without its parameter) are not the router's
    for (const path of ['/api/orders', '/api/orders/', '/api/search/x', '/nope'])
      expect((await httpRequest(`${url}${path}`, { method: 'GET' })).status).toBe(299);
    expect(other).toEqual(['/api/orders', '/api/orders/', '/api/search/x', '/nope']);
    expect(seen).toHaveLength(0);
  });

  it('router.handler answers 404 for unknown paths; an entrypoint listening on its own serves patterns', async () => {
    const router = new HttpRouter();
    const ep = httpEntrypoint({ router, path: '/items/:id', method: 'GET', message: 'params' });
    routes.push(route({ entrypoint: ep, target: (p: unknown) => p }));
    await routes[0]!.start();
    const url = await listen(router.handler);
    expect((await httpRequest(`${url}/items/1`, { method: 'GET' })).json()).toEqual({ id: '1' });
    const missing = await httpRequest(`${url}/things/1`, { method: 'GET' });
    expect(missing.status).toBe(404);
    expect(missing.json().error.code).toBe('NOT_FOUND');

    const own = httpEntrypoint({
      port: 0,
      path: '/users/:user/posts/:post',
      method: '*',
      message: 'params',
    });
    const r = route({ entrypoint: own, target: (p: unknown) => p });
    routes.push(r);
    await r.start();
    const post = await httpRequest(`${own.url}/users/ann/posts/9`, { method: 'PATCH' });
    expect(post.json()).toEqual({ user: 'ann', post: '9' });
    expect((await httpRequest(`${own.url}/users/ann`, { method: 'GET' })).status).toBe(404);
    await own.close();
  });

  it('refuses a path and method served twice, and bad methods, with typed errors', () => {
    const router = httpRouter();
    httpEntrypoint({ router, path: '/a/:id', method: 'GET' });
    let twice: unknown;
    try {
      httpEntrypoint({ router, path: '/a/:id', method: 'get', name: 'second' });
    } catch (error) {
      twice = error;
    }
    expect(isXError(twice, 'INVALID_OPTIONS')).toBe(true);
    expect((twice as Error).message).toMatch(/second: GET \/a\/:id is already served by http GET/);
    // the same pattern with another method is fine
    expect(() => httpEntrypoint({ router, path: '/a/:id', method: 'POST' })).not.toThrow();
    expect(() => httpEntrypoint({ router, path: '/a/:key', method: 'PUT' })).toThrow(
      /path: expected a pattern not served yet/,
    );
    expect(() => httpEntrypoint({ method: 'G ET' })).toThrow(
      /method: expected an HTTP method or '\*', got G ET/,
    );
    expect(() => httpEntrypoint({ method: [] })).toThrow(/method: expected a method/);
    expect(() => httpEntrypoint({ router: {} as HttpRouter })).toThrow(
      /router: expected an HttpRouter/,
    );
  });

  it('times a body out on the route clock (a ManualClock drives it), not on Date.now()', async () => {
    const clock = new ManualClock();
    const ep = httpEntrypoint({ port: 0, path: '/slow', bodyTimeoutMs: 5_000 });
    const r = route({ entrypoint: ep, clock, target: () => 'done' });
    routes.push(r);
    await r.start();
    const status = new Promise<number>((resolve, reject) => {
      const req = request(`${ep.url}/slow`, { method: 'POST', agent: false }, res => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      req.write('partial');
    });
    let answered = false;
    void status.then(() => (answered = true));
    // real time passes, the route clock does not: no answer yet
    await new Promise(resolve => setTimeout(resolve, 300));
    expect(answered).toBe(false);
    await clock.advance(5_000);
    expect(await status).toBe(408);
    await ep.close();
  });
});
