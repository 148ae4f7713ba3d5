import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNodeProcess } from './childProcess.js';

let dir = '';

async function script(name: string, source: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, source);
  return path;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'x-testkit-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('startNodeProcess', () => {
  it('resolves on the ready line and kill() waits for the exit code', async () => {
    const path = await script(
      'ready.mjs',
      `process.on('SIGTERM', () => process.exit(7));
       console.log('booting');
       setTimeout(() => console.log('READY ' + process.argv[2] + ' ' + process.env.GREETING), 20);
       setInterval(() => {}, 1000);`,
    );
    const proc = await startNodeProcess(path, {
      args: ['4242'],
      env: { GREETING: 'hi' },
      readyPattern: /^READY (\d+) (\w+)$/,
    });
    expect(proc.pid).toBe(proc.child.pid);
    expect(proc.match?.[1]).toBe('4242');
    expect(proc.match?.[2]).toBe('hi');
    expect(proc.stdout()).toContain('booting\n');
    expect(await proc.kill()).toBe(7);
    expect(proc.child.exitCode).toBe(7);
    expect(await proc.kill()).toBe(7);
  });

  it('resolves at once without a readyPattern; a signal death gives null', async () => {
    const path = await script('idle.mjs', 'setInterval(() => {}, 1000);');
    const proc = await startNodeProcess(path);
    expect(proc.match).toBeNull();
    expect(proc.pid).toBeGreaterThan(0);
    expect(await proc.kill('SIGKILL')).toBeNull();
    expect(proc.child.signalCode).toBe('SIGKILL');
  });

  it('rejects with stderr when the process exits before ready', async () => {
    const path = await script('crash.mjs', `console.error('cannot bind port'); process.exit(3);`);
    await expect(startNodeProcess(path, { readyPattern: /READY/ })).rejects.toThrow(
      /exited before ready \(code 3[\s\S]*cannot bind port/,
    );
  });

  it('rejects and kills the process when not ready in time', async () => {
    const path = await script(
      'slow.mjs',
      `console.log('pid ' + process.pid); setInterval(() => {}, 1000);`,
    );
    // 1.5 s: under CI load a node child took longer than 300 ms to print its first line
    const failure = await startNodeProcess(path, { readyPattern: /READY/, timeoutMs: 1_500 }).catch(
      (err: unknown) => err as Error,
    );
    expect(failure).toBeInstanceOf(Error);
    expect((failure as Error).message).toMatch(/not ready within 1500ms/);
    const pid = Number(/pid (\d+)/.exec((failure as Error).message)?.[1]);
    expect(pid).toBeGreaterThan(0);
    await expect
      .poll(() => {
        try {
          process.kill(pid, 0);
          return 'alive';
        } catch {
          return 'gone';
        }
      })
      .toBe('gone');
  });
});
