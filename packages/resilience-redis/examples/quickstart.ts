import { Redis } from 'ioredis';
import { circuitBreaker } from '@x/resilience';
import { redisBreakerStore, redisRateLimiter, redisRetryBudget } from '@x/resilience-redis';

async function main(): Promise<void> {
  const url = process.env.REDIS_URL;
  if (!url) {
    console.log(
      'REDIS_URL is not set: start a Redis and run REDIS_URL=redis://127.0.0.1:6379 node quickstart.js',
    );
    return;
  }
  const prefix = `quickstart:${process.pid}`;
  // Two connections stand for two gateway replicas (in production: one per process).
  const redisA = new Redis(url);
  const redisB = new Redis(url);
  const storeA = redisBreakerStore(redisA, { prefix: `${prefix}:breaker` });
  const storeB = redisBreakerStore(redisB, { prefix: `${prefix}:breaker` });
  const breakerA = circuitBreaker({ key: 'payments', store: storeA, halfOpenAfter: 30_000 });
  const breakerB = circuitBreaker({ key: 'payments', store: storeB, halfOpenAfter: 30_000 });
  await new Promise(resolve => setTimeout(resolve, 200)); // both subscribed

  // Replica A sees payments fail five times in a row and opens; replica B adopts it.
  for (let i = 0; i < 5; i++) breakerA.failure(breakerA.admit(), new Error('503'), 1);
  const opened = Date.now();
  while (breakerB.state !== 'open' && Date.now() - opened < 2_000)
    await new Promise(resolve => setTimeout(resolve, 5));
  console.log(`A is ${breakerA.state}; B is ${breakerB.state} after ${Date.now() - opened} ms`);

  // One limit for the fleet: 3 calls per second per client, whichever replica serves them.
  const limitA = redisRateLimiter({
    redis: redisA,
    points: 3,
    durationMs: 1_000,
    keyPrefix: `${prefix}:rl`,
  });
  const limitB = redisRateLimiter({
    redis: redisB,
    points: 3,
    durationMs: 1_000,
    keyPrefix: `${prefix}:rl`,
  });
  const decisions = [];
  for (const limit of [limitA, limitB, limitA, limitB])
    decisions.push(await limit.consume('client-42'));
  console.log(
    'client-42:',
    decisions
      .map(d => (d.allowed ? 'allowed' : `refused, retry in ${d.retryAfterMs} ms`))
      .join(', '),
  );

  // A retry budget for the fleet: 10 % of all replicas' calls (+ 1 retry/s) may be retried.
  const budget = redisRetryBudget({
    redis: redisA,
    key: 'payments',
    keyPrefix: `${prefix}:rb`,
    minRetriesPerSec: 1,
  });
  for (let i = 0; i < 50; i++) budget.deposit();
  await budget.sync();
  console.log(`retry budget: ${budget.balance} retries available (shared: ${budget.shared})`);

  budget.close();
  breakerA.close();
  breakerB.close();
  await Promise.all([storeA.close(), storeB.close()]);
  const keys = await redisA.keys(`${prefix}:*`);
  if (keys.length) await redisA.del(...keys);
  await Promise.all([redisA.quit(), redisB.quit()]);
}

main().catch(error => {
  console.error(error);
  process.exitCode = 1;
});
