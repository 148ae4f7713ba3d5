import { randomBytes } from 'node:crypto';

/** The Redis of the BullMQ tests. In CI it is always set; outside CI, unset means skip. */
export const REDIS_URL = process.env.REDIS_URL;

if (!REDIS_URL && process.env.CI)
  throw new Error('REDIS_URL must be set in CI: the Redis tests never skip there');

/** Why a Redis test is skipped (put in its name), or undefined when Redis is available. */
export const REDIS_SKIP_REASON = REDIS_URL
  ? undefined
  : 'SKIPPED: REDIS_URL is not set (CI always sets it)';

/** A queue or key name that no other run on the shared Redis uses. */
export function uniqueRedisName(prefix: string): string {
  return `xrel-${prefix}-${randomBytes(5).toString('hex')}`;
}
