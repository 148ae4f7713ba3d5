import { afterEach, describe, expect, it } from 'vitest';
import { DEADLINE_HEADER } from '@x/resilience';
import { startTestServer, type TestServer } from '@x/testkit';
import { remote } from './backends/remote.js';
import { inProcess } from './backends/inProcess.js';
import { createDispatcher, type Dispatcher, type DispatcherOptions } from './createDispatcher.js';
import { responseJson } from './responseTuple.js';

const open: Array<{ close(): Promise<unknown> }> = [];
function make(options: DispatcherOptions): Dispatcher {
  const dispatcher = createDispatcher(options);
  open.push(dispatcher);
  return dispatcher;
}
afterEach(async () => {
  while (open.length) await open.pop()!.close();
});

async function backend(delayMs = 0): Promise<TestServer> {
  const s = await startTestServer({ script: { delayMs, body: { ok: true } } });
  open.push(s);
  return s;
}

const budgetSeen = (s: TestServer, i = 0) => Number(s.requests[i]!.headers[DEADLINE_HEADER]);

function dispatcher(url: string, requestTimeoutMs = 10_000): Dispatcher {
  return make({
    modules: { default: { versions: { v1: { backend: remote([url]) } } } },
    requestTimeoutMs,
  });
}

describe('front door: x-request-timeout-ms', () => {
  it('an incoming budget below requestTimeoutMs becomes the deadline: 504 by then, the instance sees less', async () => {
    const s = await startTestServer({
      script: [{ body: { warm: true } }, { delayMs: 5_000 }],
    });
    open.push(s);
    const d = dispatcher(s.url);
    const door = await d.listen();
    expect((await fetch(`${door.url}/warm`)).status).toBe(200); // instance started
    const started = Date.now();
    const res = await fetch(`${door.url}/slow`, { headers: { [DEADLINE_HEADER]: '300' } });
    const elapsed = Date.now() - started;
    await res.arrayBuffer();
    expect(res.status).toBe(504);
    expect(elapsed).toBeGreaterThanOrEqual(280);
    expect(elapsed).toBeLessThan(300 + 1_500); // far below requestTimeoutMs (10 s)
    await new Promise(r => setTimeout(r, 50));
    expect(budgetSeen(s, 1)).toBeLessThanOrEqual(300);
    expect(budgetSeen(s, 1)).toBeGreaterThan(0);
  });

  it('without a header forwards what is left of requestTimeoutMs; a larger one is capped; a malformed one ignored', async () => {
    const s = await backend();
    const d = dispatcher(s.url, 2_000);
    const door = await d.listen();
    await (await fetch(`${door.url}/a`)).arrayBuffer();
    await (await fetch(`${door.url}/b`, { headers: { [DEADLINE_HEADER]: '60000' } })).arrayBuffer();
    await (await fetch(`${door.url}/c`, { headers: { [DEADLINE_HEADER]: 'soon' } })).arrayBuffer();
    for (let i = 0; i < 3; i++) {
      expect(budgetSeen(s, i)).toBeLessThanOrEqual(2_000);
      expect(budgetSeen(s, i)).toBeGreaterThan(1_000);
    }
    expect(s.requests[2]!.headers[DEADLINE_HEADER]).toBe(String(budgetSeen(s, 2))); // one value
  });

  it('an in-process instance sees the remaining budget too', async () => {
    const d = make({
      modules: {
        default: {
          versions: {
            v1: {
              backend: inProcess(req => ({
                status: 200,
                headers: [['content-type', 'application/json']],
                body: JSON.stringify({ budget: req.header(DEADLINE_HEADER) ?? null }),
              })),
            },
          },
        },
      },
    });
    const door = await d.listen();
    const res = await fetch(`${door.url}/`, { headers: { [DEADLINE_HEADER]: '700' } });
    const { budget } = (await res.json()) as { budget: string };
    expect(Number(budget)).toBeLessThanOrEqual(700);
    expect(Number(budget)).toBeGreaterThan(0);
  });
});

describe('addRequest: timeoutMs travels to the instance', () => {
  it('forwards the remaining timeoutMs, or a smaller budget found in the headers, and never waits past it', async () => {
    const s = await backend();
    const d = dispatcher(s.url);
    const tuple = await d.addRequest({ url: '/a', timeoutMs: 800 });
    expect(responseJson(tuple)).toEqual({ ok: true });
    expect(budgetSeen(s, 0)).toBeLessThanOrEqual(800);
    expect(budgetSeen(s, 0)).toBeGreaterThan(0);
    await d.addRequest({ url: '/b', headers: { [DEADLINE_HEADER]: '250' } });
    expect(budgetSeen(s, 1)).toBeLessThanOrEqual(250);
    await expect(
      d.addRequest({ url: '/c', headers: { [DEADLINE_HEADER]: '0' } }),
    ).rejects.toMatchObject({ code: 'DEADLINE_EXCEEDED' });

    const slow = await backend(5_000);
    const d2 = dispatcher(slow.url);
    const started = Date.now();
    await expect(d2.addRequest({ url: '/slow', timeoutMs: 300 })).rejects.toMatchObject({
      code: 'DEADLINE_EXCEEDED',
    });
    expect(Date.now() - started).toBeLessThan(300 + 1_500);
  });
});
