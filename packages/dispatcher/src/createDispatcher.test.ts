import { afterEach, describe, expect, it } from 'vitest';
import { isXError } from '@x/resilience';
import { captureWarnings } from '@x/testkit';
import { inProcess } from './backends/inProcess.js';
import { createDispatcher, type Dispatcher, type DispatcherOptions } from './createDispatcher.js';
import type { DispatcherEvent } from './dispatcherEvent.js';
import { InvalidConfigError } from './errors.js';
import { responseHeaders, responseJson, responseText, toFetchResponse } from './responseTuple.js';
import type { InstanceRequest } from './backend.js';

const open: Dispatcher[] = [];
function make(options: DispatcherOptions): Dispatcher {
  const dispatcher = createDispatcher(options);
  open.push(dispatcher);
  return dispatcher;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map(d => d.close()));
});

function gate() {
  let open!: () => void;
  const promise = new Promise<void>(resolve => (open = resolve));
  return { promise, open };
}

const echo = inProcess(async (req: InstanceRequest) => {
  const body = await req.text();
  return {
    status: 200,
    headers: [
      ['content-type', 'application/json'],
      ['set-cookie', 'a=1'],
      ['set-cookie', 'b=2'],
    ],
    body: JSON.stringify({
      method: req.method,
      url: req.url,
      body,
      kind: req.kind,
      ip: req.sourceIp,
      foo: req.header('X-Foo'),
      instance: req.instance.instance,
    }),
  };
});

function modules(): DispatcherOptions['modules'] {
  return {
    default: { versions: { v1: { backend: echo } } },
    manual: {
      versions: {
        v1: { backend: echo, scaling: { kind: 'manual', instances: 2 }, maxBackgroundThreads: 1 },
        v2: { backend: echo },
      },
      defaultVersion: 'v2',
    },
    basic: {
      versions: {
        v1: { backend: echo, scaling: { kind: 'basic', maxInstances: 3, idleTimeoutMs: 60_000 } },
      },
    },
    auto: { versions: { v1: { backend: echo, scaling: { kind: 'automatic' } } } },
  };
}

describe('Modules API', () => {
  it('lists modules, versions and default versions', () => {
    const d = make({ modules: modules() });
    expect(d.getModuleNames()).toEqual(['default', 'manual', 'basic', 'auto']);
    expect(d.getVersions('manual')).toEqual(['v1', 'v2']);
    expect(d.getDefaultVersion('manual')).toBe('v2');
    expect(d.getDefaultVersion('default')).toBe('v1');
    expect(() => d.getVersions('ghost')).toThrow(
      expect.objectContaining({ code: 'MODULE_DOES_NOT_EXIST' }),
    );
    expect(() => d.getDefaultVersion('ghost')).toThrow(
      expect.objectContaining({ code: 'MODULE_DOES_NOT_EXIST' }),
    );
  });

  it('builds host names that route back to the target', async () => {
    const d = make({ modules: modules(), host: 'example.com' });
    expect(d.getHostname('manual')).toBe('manual.example.com');
    expect(d.getHostname('manual', 'v1')).toBe('v1.manual.example.com');
    expect(d.getHostname('manual', 'v1', '1')).toBe('1.v1.manual.example.com');
    expect(
      d.explain({ url: '/', headers: { host: d.getHostname('manual', 'v1', '1') } }),
    ).toMatchObject({ module: 'manual', version: 'v1', instance: '1' });
    expect(() => d.getHostname('ghost')).toThrow(
      expect.objectContaining({ code: 'MODULE_DOES_NOT_EXIST' }),
    );
    expect(() => d.getHostname('manual', 'v9')).toThrow(
      expect.objectContaining({ code: 'VERSION_DOES_NOT_EXIST' }),
    );
    expect(() => d.getHostname('manual', 'v1', '9')).toThrow(
      expect.objectContaining({ code: 'INVALID_INSTANCE_ID' }),
    );
    expect(() => d.getHostname('auto', 'v1', '0')).toThrow(
      expect.objectContaining({ code: 'INVALID_INSTANCE_ID' }),
    );
    expect(() => d.getHostname('manual', undefined, '0')).toThrow(
      expect.objectContaining({ code: 'INVALID_INSTANCE_ID' }),
    );
    const door = await d.listen();
    expect(d.getHostname('manual', 'v1')).toBe(`v1.manual.example.com:${door.port}`);
  });

  it('gets and sets instance counts (manual), maximum (basic), refuses automatic', async () => {
    const d = make({ modules: modules() });
    await d.start();
    expect(d.getNumInstances('manual', 'v1')).toBe(2);
    expect(d.getInstances('manual', 'v1').map(i => [i.id, i.state])).toEqual([
      ['0', 'ready'],
      ['1', 'ready'],
    ]);
    await d.setNumInstances('manual', 'v1', 4);
    expect(d.getNumInstances('manual', 'v1')).toBe(4);
    expect(d.getInstances('manual', 'v1').map(i => i.state)).toEqual([
      'ready',
      'ready',
      'ready',
      'ready',
    ]);
    await d.setNumInstances('manual', 'v1', 1);
    expect(d.getInstances('manual', 'v1').map(i => i.id)).toEqual(['0']);
    expect(d.getNumInstances('basic', 'v1')).toBe(3);
    expect(d.getInstances('basic', 'v1').every(i => i.state === 'stopped')).toBe(true);
    expect(() => d.getNumInstances('auto', 'v1')).toThrow(
      expect.objectContaining({ code: 'NOT_SUPPORTED_WITH_AUTO_SCALING' }),
    );
    await expect(d.setNumInstances('auto', 'v1', 2)).rejects.toMatchObject({
      code: 'NOT_SUPPORTED_WITH_AUTO_SCALING',
    });
    await expect(d.setNumInstances('manual', 'v1', -1)).rejects.toBeInstanceOf(InvalidConfigError);
    await expect(d.setNumInstances('manual', 'v1', 1.5)).rejects.toBeInstanceOf(InvalidConfigError);
    await expect(d.setNumInstances('ghost', 'v1', 1)).rejects.toMatchObject({
      code: 'MODULE_DOES_NOT_EXIST',
    });
    await expect(d.setNumInstances('manual', 'v7', 1)).rejects.toMatchObject({
      code: 'VERSION_DOES_NOT_EXIST',
    });
  });

  it('stops and starts versions; a stopped version answers VERSION_STOPPED', async () => {
    const d = make({ modules: modules() });
    await d.start();
    await d.stopVersion('manual', 'v1');
    expect(d.getInstances('manual', 'v1').map(i => i.state)).toEqual(['stopped', 'stopped']);
    await expect(d.stopVersion('manual', 'v1')).rejects.toMatchObject({
      code: 'VERSION_ALREADY_STOPPED',
    });
    const error = await d.addRequest({ url: '/', module: 'manual', version: 'v1' }).catch(e => e);
    expect(isXError(error, 'VERSION_STOPPED')).toBe(true);
    expect(error.message).toMatch(/manual\/v1 is stopped; start it with startVersion/);
    await expect(
      d.addRequest({ url: '/', module: 'manual', version: 'v1', instance: '0' }),
    ).rejects.toMatchObject({ code: 'VERSION_STOPPED' });
    await d.startVersion('manual', 'v1');
    await expect(d.startVersion('manual', 'v1')).rejects.toMatchObject({
      code: 'VERSION_ALREADY_STARTED',
    });
    expect(
      responseJson(await d.addRequest({ url: '/', module: 'manual', version: 'v1' })),
    ).toMatchObject({ url: '/' });
    await expect(d.stopVersion('auto', 'v1')).rejects.toMatchObject({
      code: 'NOT_SUPPORTED_WITH_AUTO_SCALING',
    });
    await expect(d.startVersion('auto', 'v1')).rejects.toMatchObject({
      code: 'NOT_SUPPORTED_WITH_AUTO_SCALING',
    });
    // basic scaling can be stopped and started too (App Engine refused it with a misleading error)
    await d.stopVersion('basic', 'v1');
    await expect(d.addRequest({ url: '/', module: 'basic' })).rejects.toMatchObject({
      code: 'VERSION_STOPPED',
    });
    await d.startVersion('basic', 'v1');
    expect((await d.addRequest({ url: '/', module: 'basic' })).status).toBe(200);
  });
});

describe('addRequest', () => {
  it('returns the response tuple: numeric status, reason, duplicate headers, body', async () => {
    const d = make({ modules: modules() });
    const response = await d.addRequest({
      method: 'POST',
      url: '/p?q=1',
      headers: [['X-Foo', 'bar']],
      body: 'hello',
      sourceIp: '10.9.8.7',
    });
    expect(response.status).toBe(200);
    expect(response.reason).toBe('OK');
    expect(responseHeaders(response, 'set-cookie')).toEqual(['a=1', 'b=2']);
    expect(responseJson(response)).toEqual({
      method: 'POST',
      url: '/p?q=1',
      body: 'hello',
      kind: 'normal',
      ip: '10.9.8.7',
      foo: 'bar',
      instance: '0',
    });
    const fetchResponse = toFetchResponse(response);
    expect(fetchResponse.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
    expect(await fetchResponse.json()).toMatchObject({ body: 'hello' });
  });

  it('accepts every body type', async () => {
    const d = make({ modules: modules() });
    const bodies = [
      new TextEncoder().encode('bytes'),
      new ReadableStream<Uint8Array>({
        start: c => (c.enqueue(new TextEncoder().encode('stream')), c.close()),
      }),
      (async function* () {
        yield new TextEncoder().encode('it');
        yield new TextEncoder().encode('er');
      })(),
    ];
    const texts = [];
    for (const body of bodies)
      texts.push(
        responseJson<{ body: string }>(await d.addRequest({ method: 'PUT', url: '/', body })).body,
      );
    expect(texts).toEqual(['bytes', 'stream', 'iter']);
  });

  it('turns handler failures into 500 and bad handler output into BACKEND_ERROR', async () => {
    const d = make({
      modules: {
        default: {
          versions: {
            v1: {
              backend: inProcess(req => {
                if (req.path === '/throw') throw new Error('boom');
                if (req.path === '/status') return { status: 42 };
                return { body: 5 as never };
              }),
            },
          },
        },
      },
    });
    const failed = await d.addRequest({ url: '/throw' });
    expect([failed.status, failed.reason, responseText(failed)]).toEqual([
      500,
      'Internal Server Error',
      'Internal Server Error',
    ]);
    await expect(d.addRequest({ url: '/status' })).rejects.toMatchObject({ code: 'BACKEND_ERROR' });
    await expect(d.addRequest({ url: '/body' })).rejects.toMatchObject({ code: 'BACKEND_ERROR' });
  });

  it.each([
    [{ url: 'nope' }, /url must be a path/],
    [{ url: '/a b' }, /url must be a path/],
    [{ url: '/', method: 'GE T' }, /invalid method/],
    [{ url: '/', headers: { 'bad name': 'x' } }, /invalid header name/],
    [{ url: '/', headers: { ok: 'a\r\nb' } }, /invalid value/],
    [{ url: '/', body: 42 }, /body must be/],
    [{ url: '/', module: 5 }, /module must be a string/],
    [{ url: '/', timeoutMs: -1 }, /timeoutMs/],
  ])('rejects bad input %j with INVALID_REQUEST', async (request, message) => {
    const d = make({ modules: modules() });
    const error = await d.addRequest(request as never).catch(e => e);
    expect(isXError(error, 'INVALID_REQUEST')).toBe(true);
    expect(error.message).toMatch(message);
  });

  it('honours the signal and the deadline', async () => {
    const hold = gate();
    const d = make({
      modules: {
        default: { versions: { v1: { backend: inProcess(async () => (await hold.promise, {})) } } },
      },
    });
    const controller = new AbortController();
    const aborted = d.addRequest({ url: '/', signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await expect(aborted).rejects.toMatchObject({ code: 'ABORTED' });
    await expect(d.addRequest({ url: '/', timeoutMs: 30 })).rejects.toMatchObject({
      code: 'DEADLINE_EXCEEDED',
    });
    await expect(d.addRequest({ url: '/', signal: AbortSignal.abort() })).rejects.toMatchObject({
      code: 'ABORTED',
    });
    hold.open();
    // the aborted requests released their slots
    expect(d.getInstances('default', 'v1')[0]!.inFlight).toBe(0);
  });

  it('bounds the response size', async () => {
    const d = make({
      maxResponseBytes: 10,
      modules: {
        default: { versions: { v1: { backend: inProcess(() => ({ body: 'x'.repeat(11) })) } } },
      },
    });
    await expect(d.addRequest({ url: '/' })).rejects.toMatchObject({
      code: 'PAYLOAD_TOO_LARGE',
      status: 413,
    });
  });

  it('503 NO_CAPACITY with Retry-After after maxPendingLatencyMs, and a bounded queue', async () => {
    const hold = gate();
    const d = make({
      modules: {
        default: {
          versions: {
            v1: {
              backend: inProcess(async () => (await hold.promise, { body: 'ok' })),
              maxConcurrentRequests: 1,
              maxPendingLatencyMs: 50,
              maxQueuedRequests: 1,
            },
          },
        },
      },
    });
    const first = d.addRequest({ url: '/' });
    await new Promise(r => setTimeout(r, 10));
    const second = d.addRequest({ url: '/' });
    const third = await d.addRequest({ url: '/' }).catch(e => e);
    expect(third).toMatchObject({ code: 'NO_CAPACITY', dimension: 'requests', status: 503 });
    const error = await second.catch(e => e);
    expect(error).toMatchObject({ code: 'NO_CAPACITY', dimension: 'pending-latency', status: 503 });
    expect(error.retryAfterMs).toBeGreaterThanOrEqual(1000);
    hold.open();
    expect(responseText(await first)).toBe('ok');
  });

  it('queues a request for a busy addressed instance in its bulkhead', async () => {
    let release!: () => void;
    const d = make({
      modules: {
        default: {
          versions: {
            v1: {
              backend: inProcess(async req => {
                if (req.path === '/hold') await new Promise<void>(r => (release = r));
                return { body: req.instance.instance };
              }),
              scaling: { kind: 'manual', instances: 2 },
              maxConcurrentRequests: 1,
              maxPendingLatencyMs: 2_000,
            },
          },
        },
      },
    });
    await d.start();
    const held = d.addRequest({ url: '/hold', instance: '0' });
    await new Promise(r => setTimeout(r, 10));
    const queued = d.addRequest({ url: '/next', instance: '0' });
    await new Promise(r => setTimeout(r, 20));
    expect(d.getInstances('default', 'v1')[0]).toMatchObject({ inFlight: 1, queued: 1 });
    // the other instance still serves load-balanced traffic
    expect(responseText(await d.addRequest({ url: '/lb' }))).toBe('1');
    release();
    expect(responseText(await held)).toBe('0');
    expect(responseText(await queued)).toBe('0');
    await new Promise(r => setImmediate(r)); // the bulkhead frees a queued slot a few microtasks later
    expect(d.getInstances('default', 'v1')[0]).toMatchObject({ inFlight: 0, queued: 0, served: 2 });
  });
});

describe('durations (issue 12)', () => {
  it('timeoutMs 1e12 and 3e9 mean no deadline: the request succeeds, no early DEADLINE_EXCEEDED, no TimeoutOverflowWarning', async () => {
    const warnings = captureWarnings();
    const slow = inProcess(async () => {
      await new Promise(resolve => setTimeout(resolve, 60));
      return { body: 'done' };
    });
    const d = make({
      modules: { default: { versions: { v1: { backend: slow } } } },
      requestTimeoutMs: 1e12,
    });
    expect(responseText(await d.addRequest({ url: '/' }))).toBe('done');
    expect(responseText(await d.addRequest({ url: '/', timeoutMs: 3e9 }))).toBe('done');
    expect((await warnings.stop()).map(w => w.name)).not.toContain('TimeoutOverflowWarning');
  });

  it('timeoutMs "300", NaN and -1 are refused naming the field, the expected and the received value', async () => {
    const d = make({ modules: modules() });
    for (const [timeoutMs, received] of [
      ['300', '"300"'],
      [Number.NaN, 'NaN'],
      [-1, '-1'],
    ] as const) {
      const error = await d.addRequest({ url: '/', timeoutMs: timeoutMs as never }).catch(e => e);
      expect(error).toMatchObject({
        code: 'INVALID_REQUEST',
        message: `timeoutMs: expected a number of ms > 0 and <= 2147483647, or Infinity (above: no limit), received ${received}`,
      });
      expect(() =>
        createDispatcher({ modules: modules(), requestTimeoutMs: timeoutMs as never }),
      ).toThrow(
        expect.objectContaining({
          code: 'INVALID_CONFIG',
          message: expect.stringMatching(/^requestTimeoutMs: expected .* received /),
        }),
      );
    }
    expect(() => createDispatcher({ modules: modules(), eventLeaseMs: 3e9 })).toThrow(
      'eventLeaseMs: expected a number of ms > 0 and <= 2147483647, received 3000000000',
    );
    expect(() =>
      createDispatcher({
        modules: {
          a: {
            versions: {
              v1: { backend: echo, healthCheck: { check: () => true, intervalMs: '5' as never } },
            },
          },
        },
      }),
    ).toThrow(
      /healthCheck.intervalMs: expected a number of ms >= 1 and <= 2147483647, received "5"$/,
    );
  });
});

describe('addAsyncRequest', () => {
  it('is bounded and its outcome observable', async () => {
    const hold = gate();
    const d = make({
      maxAsyncRequests: 1,
      maxQueuedAsyncRequests: 1,
      modules: {
        default: {
          versions: {
            v1: {
              backend: inProcess(async req => {
                await hold.promise;
                if (req.path === '/fail') throw new Error('x');
                return { body: req.path };
              }),
            },
          },
        },
      },
    });
    const events: DispatcherEvent[] = [];
    d.on(e => events.push(e));
    const a = d.addAsyncRequest({ url: '/a' });
    const b = d.addAsyncRequest({ url: '/fail' });
    expect(() => d.addAsyncRequest({ url: '/c' })).toThrow(
      expect.objectContaining({ code: 'NO_CAPACITY', dimension: 'async-requests' }),
    );
    expect(d.stats().asyncRequests).toEqual({ running: 1, queued: 1 });
    expect(() => d.addAsyncRequest({ url: '/', module: 'ghost' })).toThrow(
      expect.objectContaining({ code: 'MODULE_DOES_NOT_EXIST' }),
    );
    hold.open();
    expect(responseText(await a.settled)).toBe('/a');
    expect((await b.settled).status).toBe(500);
    const settled = events.filter(e => e.type === 'async-request-settled');
    expect(settled).toEqual([
      { type: 'async-request-settled', requestId: a.requestId, status: 200, error: undefined },
      { type: 'async-request-settled', requestId: b.requestId, status: 500, error: undefined },
    ]);
  });

  it('fails queued requests with DISPATCHER_CLOSED on close; running ones finish', async () => {
    const hold = gate();
    const d = make({
      maxAsyncRequests: 1,
      modules: {
        default: {
          versions: {
            v1: { backend: inProcess(async req => (await hold.promise, { body: req.path })) },
          },
        },
      },
    });
    const running = d.addAsyncRequest({ url: '/running' });
    const queued = d.addAsyncRequest({ url: '/queued' });
    await new Promise(r => setImmediate(r));
    expect(d.stats().asyncRequests).toEqual({ running: 1, queued: 1 });
    const closing = d.close({ drainTimeoutMs: 5_000 });
    await expect(queued.settled).rejects.toMatchObject({ code: 'DISPATCHER_CLOSED' });
    hold.open();
    await closing;
    await running.settled.then(
      tuple => expect(responseText(tuple)).toBe('/running'),
      error => expect(error).toMatchObject({ code: expect.any(String) }),
    );
  });

  it('reports failures through settled and events', async () => {
    const d = make({ modules: { default: { versions: { v1: { backend: echo } } } } });
    await d.stopVersion('default', 'v1');
    const events: DispatcherEvent[] = [];
    d.on(e => events.push(e));
    const request = d.addAsyncRequest({ url: '/' });
    await expect(request.settled).rejects.toMatchObject({ code: 'VERSION_STOPPED' });
    await new Promise(r => setImmediate(r));
    expect(events.find(e => e.type === 'async-request-settled')).toMatchObject({
      requestId: request.requestId,
      error: expect.objectContaining({ code: 'VERSION_STOPPED' }),
    });
  });
});

describe('sendBackgroundRequest', () => {
  it('uses background slots, separate from request slots', async () => {
    const hold = gate();
    const seen: Array<[string, string, string | undefined, string]> = [];
    const d = make({
      modules: {
        default: {
          versions: {
            v1: {
              backend: inProcess(async req => {
                seen.push([
                  req.kind,
                  req.path,
                  req.header('x-appengine-backgroundrequest'),
                  req.sourceIp,
                ]);
                if (req.kind === 'background') await hold.promise;
                return { body: 'done' };
              }),
              scaling: { kind: 'manual', instances: 1 },
              maxBackgroundThreads: 1,
              maxConcurrentRequests: 1,
            },
          },
        },
        auto: { versions: { v1: { backend: echo, scaling: { kind: 'automatic' } } } },
      },
    });
    const background = d.sendBackgroundRequest('default', 'v1', '0', 'job-1');
    await new Promise(r => setTimeout(r, 20));
    await expect(d.sendBackgroundRequest('default', 'v1', '0', 'job-2')).rejects.toMatchObject({
      code: 'BACKGROUND_THREAD_LIMIT_REACHED',
      status: 503,
    });
    // the request slot is still free
    expect(responseText(await d.addRequest({ url: '/normal' }))).toBe('done');
    hold.open();
    expect(responseText(await background)).toBe('done');
    expect(seen).toEqual([
      ['background', '/_ah/background', 'job-1', '0.1.0.3'],
      ['normal', '/normal', undefined, '0.1.0.1'],
    ]);
    expect(responseText(await d.sendBackgroundRequest('default', 'v1', '0', 'job-3'))).toBe('done');
    await expect(d.sendBackgroundRequest('auto', 'v1', '0', 'x')).rejects.toMatchObject({
      code: 'NOT_SUPPORTED_WITH_AUTO_SCALING',
    });
    await expect(d.sendBackgroundRequest('default', 'v1', '3', 'x')).rejects.toMatchObject({
      code: 'INVALID_INSTANCE_ID',
    });
    await expect(d.sendBackgroundRequest('default', 'v1', '0', '')).rejects.toMatchObject({
      code: 'INVALID_REQUEST',
    });
    await expect(d.sendBackgroundRequest('ghost', 'v1', '0', 'x')).rejects.toMatchObject({
      code: 'MODULE_DOES_NOT_EXIST',
    });
  });
});

describe('lifecycle', () => {
  it('calls onStart and onStop, and a drain ends as soon as in-flight work is done', async () => {
    const calls: string[] = [];
    let release!: () => void;
    const d = createDispatcher({
      modules: {
        default: {
          versions: {
            v1: {
              backend: inProcess(async () => {
                await new Promise<void>(r => (release = r));
                return { body: 'late' };
              }),
              scaling: { kind: 'manual', instances: 2 },
              lifecycle: {
                onStart: i => void calls.push(`start ${i.instance}`),
                onStop: i => void calls.push(`stop ${i.instance}`),
                drainTimeoutMs: 20_000,
              },
            },
          },
        },
      },
    });
    await d.start();
    expect(calls.sort()).toEqual(['start 0', 'start 1']);
    const pending = d.addRequest({ url: '/' });
    await new Promise(r => setTimeout(r, 10));
    const started = Date.now();
    const closing = d.close();
    await new Promise(r => setTimeout(r, 50));
    release();
    await closing;
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(responseText(await pending)).toBe('late');
    expect(calls.filter(c => c.startsWith('stop')).sort()).toEqual(['stop 0', 'stop 1']);
    await expect(d.addRequest({ url: '/' })).rejects.toMatchObject({ code: 'DISPATCHER_CLOSED' });
    await expect(d.start()).rejects.toMatchObject({ code: 'DISPATCHER_CLOSED' });
  });

  it('a failing onStart keeps the instance out and retries with backoff', async () => {
    let attempts = 0;
    const events: string[] = [];
    const d = make({
      modules: {
        default: {
          versions: {
            v1: {
              backend: echo,
              lifecycle: {
                onStart: () => {
                  if (++attempts < 3) throw new Error('not yet');
                },
              },
              restart: { maxRestarts: 5 },
            },
          },
        },
      },
    });
    d.on(e => events.push(e.type));
    await d.start();
    expect(d.getInstances('default', 'v1')[0]).toMatchObject({
      state: 'crash-loop',
      startFailures: 1,
      lastError: expect.stringMatching(/not yet/),
    });
    // after one failed start the request waits for the restart instead of failing
    const response = await d.addRequest({ url: '/' });
    expect(response.status).toBe(200);
    expect(attempts).toBe(3);
    expect(events.filter(e => e === 'instance-start-failed')).toHaveLength(2);
    expect(events.filter(e => e === 'instance-restart-scheduled')).toHaveLength(2);
    expect(d.getInstances('default', 'v1')[0]).toMatchObject({ state: 'ready', restarts: 2 });
  });

  it('is async-disposable', async () => {
    let stopped = 0;
    {
      await using d = createDispatcher({
        modules: {
          default: {
            versions: { v1: { backend: echo, lifecycle: { onStop: () => void stopped++ } } },
          },
        },
      });
      await d.start();
    }
    expect(stopped).toBe(1);
  });
});

describe('configuration', () => {
  it.each([
    [{}, /at least one module/],
    [{ modules: { Bad: { versions: { v1: { backend: echo } } } } }, /lowercase host-name label/],
    [{ modules: { a: { versions: {} } } }, /has no version/],
    [{ modules: { a: { versions: { 'V 1': { backend: echo } } } } }, /version name/],
    [{ modules: { a: { versions: { v1: { backend: {} } } } } }, /backend must come from/],
    [
      { modules: { a: { versions: { v1: { backend: echo, scaling: { kind: 'magic' } } } } } },
      /scaling.kind/,
    ],
    [
      {
        modules: {
          a: { versions: { v1: { backend: echo, scaling: { kind: 'manual', instances: -1 } } } },
        },
      },
      /instances must be/,
    ],
    [
      {
        modules: {
          a: {
            versions: {
              v1: {
                backend: echo,
                scaling: { kind: 'automatic', minInstances: 5, maxInstances: 2 },
              },
            },
          },
        },
      },
      /minInstances 5 > maxInstances 2/,
    ],
    [
      { modules: { a: { versions: { v1: { backend: echo, maxConcurrentRequests: 0 } } } } },
      /maxConcurrentRequests/,
    ],
    [
      { modules: { a: { versions: { v1: { backend: echo, healthCheck: {} } } } } },
      /need a check function/,
    ],
    [
      { modules: { a: { versions: { v1: { backend: echo } }, defaultVersion: 'v2' } } },
      /default version "v2"/,
    ],
    [
      { modules: { a: { versions: { v1: { backend: echo } } } }, defaultModule: 'b' },
      /default module "b"/,
    ],
    [
      { modules: { a: { versions: { v1: { backend: echo } } } }, host: 'Example.com' },
      /host must be/,
    ],
    [
      { modules: { a: { versions: { v1: { backend: echo } } } }, requestTimeoutMs: 0 },
      /requestTimeoutMs/,
    ],
    [
      {
        modules: { a: { versions: { v1: { backend: echo } } } },
        split: [{ module: 'a', weights: { v2: 1 } }],
      },
      /does not exist/,
    ],
  ])('rejects %j with INVALID_CONFIG', (options, message) => {
    expect(() => createDispatcher(options as never)).toThrow(InvalidConfigError);
    expect(() => createDispatcher(options as never)).toThrow(message);
  });

  it('rejects bad rules with INVALID_DISPATCH_RULE', () => {
    expect(() =>
      createDispatcher({ modules: modules(), rules: [{ url: '*/x', module: 'ghost' }] }),
    ).toThrow(expect.objectContaining({ code: 'INVALID_DISPATCH_RULE' }));
    expect(() => createDispatcher({ modules: modules(), rules: 'dispatch: [' })).toThrow(
      expect.objectContaining({ code: 'INVALID_DISPATCH_RULE' }),
    );
    expect(() =>
      createDispatcher({ modules: modules(), rules: { file: '/nonexistent/dispatch.yaml' } }),
    ).toThrow(expect.objectContaining({ code: 'INVALID_DISPATCH_RULE' }));
  });

  it('reports stats', async () => {
    const d = make({ modules: modules(), rules: [{ url: '*/x', module: 'manual' }] });
    await d.addRequest({ url: '/x' });
    const stats = d.stats();
    expect(stats.rules).toBe(1);
    expect(stats.versions.find(v => v.module === 'manual' && v.version === 'v2')).toMatchObject({
      scaling: 'manual',
      ready: 1,
      instances: 1,
      outstanding: 0,
    });
    expect(stats.versions.find(v => v.module === 'auto')).toMatchObject({
      scaling: 'automatic',
      ready: 1,
    });
  });
});
