import { randomBytes } from 'node:crypto';
import { describe } from 'vitest';

/** The Redis the BullMQ tests use. Unset outside CI: those tests skip (with the reason in their name). */
export const REDIS_URL = process.env.REDIS_URL;

if (!REDIS_URL && process.env.CI)
  throw new Error('REDIS_URL must be set in CI: the BullMQ tests never skip there');

const SKIP_REASON = 'SKIPPED: REDIS_URL is not set (CI always sets it)';
if (!REDIS_URL) console.warn(`@x/routes: BullMQ tests ${SKIP_REASON}`);

/** `describe` for tests that need Redis: skipped, with the reason in the suite name, when REDIS_URL is unset. */
export function describeRedis(name: string, fn: () => void): void {
  if (REDIS_URL) describe(name, fn);
  else describe.skip(`${name} — ${SKIP_REASON}`, fn);
}

/** A queue name no other test (nor another engineer's run on the shared Redis) uses. */
export function uniqueName(prefix: string): string {
  return `xroutes-test-${prefix}-${randomBytes(5).toString('hex')}`;
}
