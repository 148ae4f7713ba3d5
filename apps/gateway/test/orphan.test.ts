import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { freePort } from '@x/testkit';
import { describe, expect, it } from 'vitest';
import { APP_DIR } from './helpers.js';

const CATALOG = join(APP_DIR, 'dist', 'backends', 'catalog.js');

describe('an instance whose gateway died before it finished loading', () => {
  it('exits by itself (X_GATEWAY_PID is gone), and stays while that pid lives', async () => {
    // a pid that existed and is gone: a process that already exited
    const gone = spawnSync(process.execPath, ['-e', '0']).pid!;
    const start = async (gatewayPid: number) => {
      const child = spawn(process.execPath, [CATALOG], {
        env: {
          ...process.env,
          PORT: String(await freePort()),
          X_MODULE: 'catalog',
          X_VERSION: 'v1',
          X_INSTANCE: '0',
          X_GATEWAY_PID: String(gatewayPid),
        },
        stdio: 'ignore',
      });
      const exited = new Promise<number | null>(resolve => child.on('exit', code => resolve(code)));
      return { child, exited };
    };
    const orphan = await start(gone);
    const kept = await start(process.pid);
    try {
      const code = await Promise.race([
        orphan.exited,
        new Promise(resolve => setTimeout(() => resolve('still running'), 20_000)),
      ]);
      expect(code).toBe(0);
      // the one whose gateway (this test) lives is still there
      expect(kept.child.exitCode).toBeNull();
    } finally {
      orphan.child.kill('SIGKILL');
      kept.child.kill('SIGTERM');
      await kept.exited;
    }
  }, 40_000);
});
