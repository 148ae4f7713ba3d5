// The gateway CLI against a Redis it cannot use: it exits non-zero with one clear line within a
// bound, instead of hanging. The hung Redis is a redis-server of this test's own (SIGSTOPped).
import { spawn } from 'node:child_process';
import { freePort, startRedisServer } from '@x/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, removeConfigs, testConfig, writeConfig } from './helpers.js';

afterAll(removeConfigs);

/** Runs the CLI; kills it after `killAfterMs` (a hang), resolving with what it printed. */
function runCli(
  env: Record<string, string>,
  killAfterMs: number,
): Promise<{ code: number | null; stderr: string; ms: number; killed: boolean }> {
  const started = performance.now();
  return new Promise(resolve => {
    const child = spawn(
      process.execPath,
      [CLI, '--config', writeConfig(testConfig()), '--port', '0'],
      { env: { ...process.env, LOG_LEVEL: 'silent', ...env }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, killAfterMs);
    child.stderr.on('data', chunk => (stderr += chunk));
    child.on('close', code => {
      clearTimeout(timer);
      resolve({ code, stderr, ms: performance.now() - started, killed });
    });
  });
}

describe('gateway CLI with an unusable REDIS_URL', () => {
  it('exits 1 with one line naming Redis and the URL (no password) when Redis refuses connections', async () => {
    const port = await freePort();
    const r = await runCli({ REDIS_URL: `redis://app:s3cret@127.0.0.1:${port}` }, 40_000);
    expect(r.killed).toBe(false);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(
      `could not start: cannot reach Redis at redis://app:***@127.0.0.1:${port}`,
    );
    expect(r.stderr).not.toContain('s3cret');
  }, 60_000);

  it('exits 1 within the 5 s bound when Redis accepts connections but never answers (SIGSTOP)', async () => {
    const redis = await startRedisServer();
    redis.pause();
    try {
      const r = await runCli({ REDIS_URL: redis.url }, 40_000);
      expect(r.killed, 'the CLI hung: killed after 40 s').toBe(false);
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(
        /could not start: cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+: no answer within 5000 ms/,
      );
      // 5 s bound + the CLI's own start on a loaded machine
      expect(r.ms).toBeLessThan(5_000 + 20_000);
    } finally {
      redis.resume();
      await redis.close();
    }
  }, 60_000);
});
