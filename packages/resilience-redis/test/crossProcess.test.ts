// Cross-process behaviour, with real separate Node processes (test/fixtures/peer.mjs, which loads
// the built dist/) on a real redis-server of the test's own.
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { startRedisServer, type RedisServer } from '@x/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisSkip } from './redisSkip.js';

const PEER = fileURLToPath(new URL('./fixtures/peer.mjs', import.meta.url));

interface Peer {
  child: ChildProcess;
  call<T = Record<string, unknown>>(cmd: string, args?: Record<string, unknown>): Promise<T>;
  states: Array<{ key: string; state: string; at: number }>;
  stop(): Promise<{ unhandled: number }>;
}

async function startPeer(url: string): Promise<Peer> {
  const child = fork(PEER, [], { env: { ...process.env, REDIS_URL: url }, stdio: 'pipe' });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const pending = new Map<number, (reply: Record<string, unknown>) => void>();
  const states: Peer['states'] = [];
  let next = 0;
  child.on('message', (message: Record<string, unknown>) => {
    if (message.type === 'state')
      states.push(message as { key: string; state: string; at: number });
    if (message.type === 'reply') pending.get(message.id as number)?.(message);
  });
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', code => reject(new Error(`peer exited with ${code}: ${stderr}`)));
  });
  const call = <T>(cmd: string, args: Record<string, unknown> = {}) =>
    new Promise<T>((resolve, reject) => {
      const id = next++;
      pending.set(id, reply => {
        pending.delete(id);
        if (reply.error) reject(new Error(String(reply.error)));
        else resolve(reply as T);
      });
      child.send({ id, cmd, ...args });
    });
  return {
    child,
    call,
    states,
    async stop() {
      const reply = await call<{ unhandled: number }>('exit');
      if (child.exitCode === null) await new Promise(resolve => child.once('exit', resolve));
      return reply;
    },
  };
}

describe.skipIf(redisSkip)('across processes (real Redis, child processes)', () => {
  let redis: RedisServer;
  const peers: Peer[] = [];
  beforeAll(async () => {
    redis = await startRedisServer();
  });
  afterAll(async () => {
    for (const peer of peers) peer.child.kill('SIGKILL');
    await redis?.close();
  });
  const peer = async () => {
    const p = await startPeer(redis.url);
    peers.push(p);
    return p;
  };

  it("breakers sharing a key in two processes adopt each other's open and close within 100 ms (asserted < 1000 ms)", async () => {
    const [a, b] = await Promise.all([peer(), peer()]);
    const prefix = `t:${randomUUID()}`;
    const adoption = async (from: Peer, to: Peer, key: string, cmd: 'open' | 'close') => {
      const done = await from.call<{ state: string; at: number }>(cmd, { key });
      const want = cmd === 'open' ? 'open' : 'closed';
      expect(done.state).toBe(want);
      const seen = () => to.states.find(s => s.key === key && s.state === want && s.at >= done.at);
      const deadline = Date.now() + 3000;
      while (!seen() && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 5));
      expect(seen(), `${cmd} of "${key}" adopted by the other process`).toBeDefined();
      expect((await to.call<{ state: string }>('state', { key })).state).toBe(want);
      return seen()!.at - done.at;
    };
    const opens: number[] = [];
    const closes: number[] = [];
    for (let round = 0; round < 6; round++) {
      const key = `dep-${round}`;
      await Promise.all([a.call('breaker', { prefix, key }), b.call('breaker', { prefix, key })]);
      const [from, to] = round % 2 === 0 ? [a, b] : [b, a];
      opens.push(await adoption(from, to, key, 'open'));
      closes.push(await adoption(to, from, key, 'close'));
    }
    console.log(
      `[resilience-redis] cross-process adoption: open ${opens.join(', ')} ms; close ${closes.join(', ')} ms`,
    );
    expect(Math.max(...opens, ...closes)).toBeLessThan(1000);
    expect((await a.stop()).unhandled).toBe(0);
    expect((await b.stop()).unhandled).toBe(0);
  });

  it('a breaker in a process started later begins from the shared open state', async () => {
    const prefix = `t:${randomUUID()}`;
    const a = await peer();
    await a.call('breaker', { prefix, key: 'orders' });
    await a.call('open', { key: 'orders' });
    const late = await peer();
    await late.call('breaker', { prefix, key: 'orders' });
    const deadline = Date.now() + 3000;
    let state = '';
    while (
      (state = (await late.call<{ state: string }>('state', { key: 'orders' })).state) !== 'open' &&
      Date.now() < deadline
    )
      await new Promise(resolve => setTimeout(resolve, 10));
    expect(state).toBe('open');
    await a.stop();
    await late.stop();
  });

  it('Redis SIGKILLed: a process opens its breaker locally; Redis restarted: the other process adopts it (resync)', async () => {
    const own = await startRedisServer();
    try {
      const [a, b] = await Promise.all([startPeer(own.url), startPeer(own.url)]);
      peers.push(a, b);
      const prefix = `t:${randomUUID()}`;
      await Promise.all([
        a.call('breaker', { prefix, key: 'search' }),
        b.call('breaker', { prefix, key: 'search' }),
      ]);
      process.kill(own.pid!, 'SIGKILL');
      await new Promise(resolve => setTimeout(resolve, 300)); // both connections see it gone
      const opened = await a.call<{ state: string }>('open', { key: 'search' });
      expect(opened.state).toBe('open');
      await new Promise(resolve => setTimeout(resolve, 200));
      expect((await b.call<{ state: string }>('state', { key: 'search' })).state).toBe('closed');
      while (
        (() => {
          try {
            process.kill(own.pid!, 0);
            return true;
          } catch {
            return false;
          }
        })()
      )
        await new Promise(resolve => setTimeout(resolve, 10));
      await own.start();
      const restarted = Date.now();
      let state = 'closed';
      while (state !== 'open' && Date.now() - restarted < 10_000) {
        await new Promise(resolve => setTimeout(resolve, 10));
        state = (await b.call<{ state: string }>('state', { key: 'search' })).state;
      }
      console.log(
        `[resilience-redis] cross-process resync: B open ${Date.now() - restarted} ms after Redis restarted`,
      );
      expect(state).toBe('open');
      expect((await a.stop()).unhandled).toBe(0);
      expect((await b.stop()).unhandled).toBe(0);
    } finally {
      await own.close();
    }
  });

  it('two processes sharing a global limit of N per window admit N in total (within 10 %)', async () => {
    const [a, b] = await Promise.all([peer(), peer()]);
    const prefix = `t:${randomUUID()}`;
    const N = 100;
    const args = { prefix, points: N, durationMs: 30_000, calls: 150 };
    const [ra, rb] = await Promise.all([
      a.call<{ admitted: number }>('rate', args),
      b.call<{ admitted: number }>('rate', args),
    ]);
    const total = ra.admitted + rb.admitted;
    console.log(
      `[resilience-redis] global limit ${N}: admitted ${ra.admitted} + ${rb.admitted} = ${total} of 300`,
    );
    expect(total).toBeGreaterThanOrEqual(N * 0.9);
    expect(total).toBeLessThanOrEqual(N * 1.1);
    expect(ra.admitted).toBeGreaterThan(0);
    expect(rb.admitted).toBeGreaterThan(0);
    await a.stop();
    await b.stop();
  });

  it("a retry budget is shared: one process's calls fund another process's retries", async () => {
    const [a, b] = await Promise.all([peer(), peer()]);
    const prefix = `t:${randomUUID()}`;
    const common = { prefix, key: 'inventory', percentCanRetry: 0.1, minRetriesPerSec: 0 };
    // A makes 2000 calls and no retries; B makes no calls and wants 300 retries. A local budget
    // would give B none; the shared one gives it 10 % of the fleet's calls: 200.
    const ra = await a.call<{ granted: number }>('budget', { ...common, calls: 2000, retries: 0 });
    expect(ra.granted).toBe(0);
    const rb = await b.call<{ granted: number }>('budget', { ...common, calls: 0, retries: 300 });
    console.log(
      `[resilience-redis] shared retry budget: B granted ${rb.granted} retries (expected 200)`,
    );
    expect(rb.granted).toBeGreaterThanOrEqual(180);
    expect(rb.granted).toBeLessThanOrEqual(220);
    await a.stop();
    await b.stop();
  });
});
