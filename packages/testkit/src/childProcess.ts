import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';

/** Options of {@link startNodeProcess}. */
export interface NodeProcessOptions {
  /** Arguments after the script path. */
  args?: string[];
  /** Extra environment variables, merged over `process.env`. */
  env?: Record<string, string | undefined>;
  /** Resolve once a complete stdout line matches this pattern; without it, resolve at once. */
  readyPattern?: RegExp;
  /** Reject (and kill the process) if not ready within this many milliseconds. Default 10 000. */
  timeoutMs?: number;
  /** Working directory. Default: the current one. */
  cwd?: string;
}

/** A running Node.js child process started by {@link startNodeProcess}. */
export interface NodeProcess {
  /** The underlying child process. */
  child: ChildProcess;
  /** Its process id. */
  pid: number;
  /** Everything written to stdout so far. */
  stdout(): string;
  /** Everything written to stderr so far. */
  stderr(): string;
  /** The `readyPattern` match, or null when no pattern was given. */
  match: RegExpMatchArray | null;
  /**
   * Sends `signal` (default SIGTERM), escalating to SIGKILL after 5 s, and resolves with the exit code
   * once the process has exited (null when it died from a signal). Safe to call after exit.
   */
  kill(signal?: NodeJS.Signals): Promise<number | null>;
  /** Same as {@link NodeProcess.kill} with SIGTERM, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

const KILL_GRACE_MS = 5000;

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/**
 * Spawns `process.execPath scriptPath ...args` and resolves when a stdout line matches `readyPattern`
 * (or at once without one). Rejects with the collected stderr if the process exits or fails first, or
 * when `timeoutMs` passes (the process is then killed).
 */
export function startNodeProcess(
  scriptPath: string,
  options: NodeProcessOptions = {},
): Promise<NodeProcess> {
  const { args = [], env, readyPattern, timeoutMs = 10_000, cwd } = options;
  const child = spawn(process.execPath, [scriptPath, ...args], {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  let pending = '';
  const exited = once(child, 'exit').then(() => child.exitCode);
  // `exited` may reject with a spawn error; it is observed below, avoid an unhandled rejection.
  exited.catch(() => {});

  const kill = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> => {
    if (!hasExited(child) && child.pid !== undefined) {
      child.kill(signal);
      const escalate = setTimeout(() => {
        if (!hasExited(child)) child.kill('SIGKILL');
      }, KILL_GRACE_MS);
      try {
        await exited;
      } catch {
        // spawn error: nothing to wait for
      } finally {
        clearTimeout(escalate);
      }
    }
    return child.exitCode;
  };

  return new Promise<NodeProcess>((resolve, reject) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const ready = (match: RegExpMatchArray | null): void => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      resolve({
        child,
        pid: child.pid ?? 0,
        stdout: () => out,
        stderr: () => err,
        match,
        kill,
        [Symbol.asyncDispose]: async () => {
          await kill();
        },
      });
    };
    const fail = (reason: string, cause?: unknown): void => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      const stderrText = err.trim() ? `\n--- stderr ---\n${err.trim()}` : '';
      const stdoutText = out.trim() ? `\n--- stdout ---\n${out.trim()}` : '';
      reject(
        new Error(`startNodeProcess(${scriptPath}): ${reason}${stderrText}${stdoutText}`, {
          cause,
        }),
      );
    };

    child.stdout?.setEncoding('utf8');
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      err += chunk;
    });
    child.stdout?.on('data', (chunk: string) => {
      out += chunk;
      if (!readyPattern || settled) return;
      pending += chunk;
      const lines = pending.split(/\r?\n/);
      pending = lines.pop() ?? '';
      for (const line of lines) {
        const match = line.match(readyPattern);
        if (match) {
          ready(match);
          return;
        }
      }
    });
    child.once('error', error => fail(`failed to start: ${error.message}`, error));
    // 'close' (not 'exit') so that all of stdout and stderr has been read.
    child.once('close', (code, signal) =>
      fail(`exited before ready (code ${code}, signal ${signal})`),
    );
    if (timeoutMs > 0 && readyPattern) {
      timer = setTimeout(() => {
        fail(`not ready within ${timeoutMs}ms (waiting for ${String(readyPattern)})`);
        void kill('SIGKILL');
      }, timeoutMs);
    }
    if (!readyPattern) {
      child.once('spawn', () => ready(null));
    }
  });
}
