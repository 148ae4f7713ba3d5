// DESIGN.md §4: tests that need Redis skip (with a printed reason) only when REDIS_URL is unset
// outside CI, never in CI. They then start redis-servers of their own (never the shared one), so
// they can kill and restart them.

/** True when the Redis tests are skipped. */
export const redisSkip = !process.env.REDIS_URL && !process.env.CI;
if (redisSkip)
  console.warn(
    '[@x/resilience-redis] Redis tests skipped: REDIS_URL is not set (they never skip in CI)',
  );
