import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { inProcess } from './backends/inProcess.js';
import { createDispatcher, type Dispatcher } from './createDispatcher.js';

const TOKEN = 'admin-token-0123456789abcdef';

async function status(base: string, token: string): Promise<number> {
  const res = await fetch(`${base}/_x/admin/modules`, {
    headers: { authorization: `Bearer ${token}` },
  });
  await res.arrayBuffer();
  return res.status;
}

describe('the admin lockout of a dispatcher with two front doors', () => {
  let dispatcher: Dispatcher;
  let server: Server;
  let mounted: string;
  let listening: string;

  beforeAll(async () => {
    dispatcher = createDispatcher({
      modules: { web: { versions: { v1: { backend: inProcess(() => ({ status: 200 })) } } } },
    });
    const admin = { token: TOKEN, maxFailures: 4, failureWindowMs: 60_000 };
    const door = dispatcher.mount({ admin });
    server = createServer((req, res) => door.handler(req, res));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    mounted = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    listening = (await dispatcher.listen({ admin })).url;
  });

  afterAll(async () => {
    server.close();
    await dispatcher.close({ drainTimeoutMs: 1_000 });
  });

  it('is one budget of wrong tokens per client address across the mounted and the listening door', async () => {
    const answers: number[] = [];
    for (let i = 0; i < 10; i++)
      answers.push(await status(i % 2 === 0 ? mounted : listening, `wrong-${i}-0123456789abcdef`));
    expect(answers.filter(s => s === 403)).toHaveLength(4);
    expect(answers.slice(4).every(s => s === 429)).toBe(true);
    // locked out on both doors, the right token too
    expect(await status(mounted, TOKEN)).toBe(429);
    expect(await status(listening, TOKEN)).toBe(429);
  });
});
