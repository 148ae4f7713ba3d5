import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './freePort.js';

/** Options of {@link startRedisServer}. */
export interface RedisServerOptions {
  /** Port. Default: a free one. */
  port?: number;
  /** Give up starting after this many ms. Default 10 000. */
  timeoutMs?: number;
}

/**
 * A redis-server of a test's own (never the shared one): it can be stopped, restarted on the same
 * port with its data (append-only file in a temporary directory), paused and resumed.
 */
export interface RedisServer {
  /** `redis://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  /** The running process's pid (undefined while stopped). */
  readonly pid: number | undefined;
  /** Stops it (SIGTERM: the data is flushed to disk; connections are refused until `start()`). */
  stop(): Promise<void>;
  /** Starts it again on the same port with the same data. */
  start(): Promise<void>;
  /** SIGSTOP: connections stay open but nothing answers (a hung Redis). */
  pause(): void;
  /** SIGCONT after {@link RedisServer.pause}. */
  resume(): void;
  /** Kills it and deletes its data. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/**
 * Starts `redis-server` (from the PATH) as a child process on loopback, with no RDB snapshots and
 * an append-only file fsynced on every write, and resolves once it accepts connections.
 */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const port = options.port ?? (await freePort());
  const timeoutMs = options.timeoutMs ?? 10_000;
  const dir = mkdtempSync(join(tmpdir(), 'x-redis-'));
  let child: ChildProcess | undefined;

  const spawnServer = async (): Promise<void> => {
    const proc = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--dir',
        dir,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child = proc;
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        proc.kill('SIGKILL');
        reject(new Error(`redis-server on port ${port} not ready after ${timeoutMs} ms: ${out}`));
      }, timeoutMs);
      const onData = (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('Ready to accept connections')) {
          clearTimeout(timer);
          proc.stdout!.off('data', onData);
          proc.stdout!.resume();
          resolve();
        }
      };
      proc.stdout!.on('data', onData);
      proc.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
      proc.once('error', error => {
        clearTimeout(timer);
        reject(error);
      });
      proc.once('exit', code => {
        clearTimeout(timer);
        reject(new Error(`redis-server on port ${port} exited with ${code}: ${out}`));
      });
    });
  };

  const stopServer = async (signal: NodeJS.Signals): Promise<void> => {
    const proc = child;
    child = undefined;
    if (!proc || exited(proc)) return;
    const gone = once(proc, 'exit');
    proc.kill('SIGCONT');
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
    await gone;
    clearTimeout(timer);
  };

  await spawnServer();
  const server: RedisServer = {
    url: `redis://127.0.0.1:${port}`,
    port,
    get pid() {
      return child?.pid;
    },
    stop: () => stopServer('SIGTERM'),
    start: async () => {
      if (child && !exited(child)) return;
      await spawnServer();
    },
    pause: () => void child?.kill('SIGSTOP'),
    resume: () => void child?.kill('SIGCONT'),
    close: async () => {
      await stopServer('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
    [Symbol.asyncDispose]: () => server.close(),
  };
  return server;
}
