import { durationOption } from '../internal/durationOption.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { InstanceStartError, InvalidConfigError } from '../errors.js';
import type { Backend, InstanceExit, RuntimeProxy } from '../backend.js';
import { trackChild } from '../internal/childRegistry.js';
import { OutputTail } from '../internal/outputTail.js';
import { allocatePort, canConnect } from '../internal/ports.js';

/** Options of {@link childProcess}. */
export interface ChildProcessOptions {
  /** Executable. Default `process.execPath` (node). */
  readonly command?: string;
  /** Arguments, e.g. `['server.js']`. */
  readonly args?: readonly string[];
  /** Extra environment, merged over `process.env`. `PORT` is always set by the dispatcher. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly cwd?: string;
  /** Interface the child must listen on. Default `'127.0.0.1'`. */
  readonly host?: string;
  /** Longest wait for the port to accept connections. Default 10 000 ms. */
  readonly startTimeoutMs?: number;
  /** Wait between SIGTERM and SIGKILL. Default 5 000 ms. */
  readonly killTimeoutMs?: number;
  /**
   * The child's stdout/stderr: `'inherit'` (default: shown on the dispatcher's own), `'ignore'`,
   * or `'pipe'` (kept for start errors only). In every mode the last lines of stderr (stdout too
   * with `'pipe'`; at most 20 lines / 4 KiB) appear in `INSTANCE_START_FAILED` errors.
   */
  readonly output?: 'inherit' | 'ignore' | 'pipe';
  /** Send `/_ah/start`, `/_ah/warmup` and `/_ah/stop`. Default true. */
  readonly lifecycleRequests?: boolean;
  /** Most instances. Default Infinity. */
  readonly maxInstances?: number;
}

/**
 * A backend whose instances are child processes, App Engine style: each gets a free `PORT`
 * (plus `X_MODULE`, `X_VERSION`, `X_INSTANCE`) in its environment and counts as started once
 * the port accepts connections. Stopping sends SIGTERM, then SIGKILL after `killTimeoutMs`, and
 * waits for the exit, so no process outlives its instance. If the dispatcher's process exits
 * first, the children are killed too.
 */
export function childProcess(options: ChildProcessOptions): Backend {
  if (typeof options !== 'object' || options === null)
    throw new InvalidConfigError('childProcess() needs options');
  const {
    command = process.execPath,
    args = [],
    env = {},
    cwd,
    host = '127.0.0.1',
    startTimeoutMs = 10_000,
    killTimeoutMs = 5_000,
    output = 'inherit',
    lifecycleRequests = true,
    maxInstances = Infinity,
  } = options;
  if (typeof command !== 'string' || command === '')
    throw new InvalidConfigError('childProcess(): command must be a non-empty string');
  if (!Array.isArray(args) || args.some(a => typeof a !== 'string'))
    throw new InvalidConfigError('childProcess(): args must be a list of strings');
  const timerOption = { allowInfinity: false } as const;
  durationOption(startTimeoutMs, 'childProcess(): startTimeoutMs', {
    ...timerOption,
    exclusiveMin: true,
  });
  durationOption(killTimeoutMs, 'childProcess(): killTimeoutMs', timerOption);
  if (output !== 'inherit' && output !== 'ignore' && output !== 'pipe')
    throw new InvalidConfigError('childProcess(): output must be inherit, ignore or pipe');
  if (!(maxInstances >= 1)) throw new InvalidConfigError('maxInstances must be >= 1');

  return {
    kind: 'child-process',
    maxInstances,
    lifecycleRequests,
    create(context): RuntimeProxy {
      let child: ChildProcess | undefined;
      let port: number | undefined;
      let exited: InstanceExit | undefined;
      let stopping = false;
      let tail = new OutputTail();
      const exitWaiters: Array<() => void> = [];
      const listeners: Array<(exit: InstanceExit) => void> = [];
      const proxy: RuntimeProxy = {
        get origin() {
          return port === undefined
            ? undefined
            : `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
        },
        get pid() {
          return child?.pid;
        },
        get port() {
          return port;
        },
        async start(signal) {
          port = await allocatePort(host);
          if (stopping) throw new InstanceStartError('instance stopped while starting');
          if (signal.aborted) throw signal.reason;
          const output_ = (tail = new OutputTail());
          const spawned = spawn(command, args, {
            cwd,
            env: {
              ...process.env,
              ...env,
              PORT: String(port),
              X_MODULE: context.module,
              X_VERSION: context.version,
              X_INSTANCE: context.instance,
            },
            // stderr is always read: its last lines explain a start failure
            stdio: ['ignore', output, 'pipe'],
          });
          child = spawned;
          const pipesClosed = new Promise<void>(resolve => spawned.once('close', () => resolve()));
          spawned.stdout?.on('data', (chunk: Buffer) => output_.push(chunk));
          spawned.stderr?.on('data', (chunk: Buffer) => {
            output_.push(chunk);
            if (output === 'inherit') process.stderr.write(chunk);
          });
          spawned.once('error', error => {
            // spawn failures (ENOENT, EACCES) end in 'exit' too when a pid existed; otherwise here
            if (spawned.pid === undefined) finish({ code: null, signal: null, error });
          });
          spawned.once('exit', (code, sig) => finish({ code, signal: sig }));
          if (spawned.pid !== undefined) trackChild(spawned);
          const deadline = Date.now() + startTimeoutMs;
          let wait = 10;
          for (;;) {
            if (exited) {
              const last = await lastOutput(pipesClosed, tail);
              throw new InstanceStartError(
                `instance ${context.module}/${context.version}/${context.instance} exited before listening ` +
                  `(code ${exited.code}, signal ${exited.signal})${last ? `; last output:\n${last}` : ''}`,
                { cause: exited.error, output: last },
              );
            }
            if (signal.aborted) {
              await proxy.stop(true);
              throw signal.reason;
            }
            if (await canConnect(host, port, 500)) return;
            if (Date.now() > deadline) {
              await proxy.stop(true);
              const last = tail.toString();
              throw new InstanceStartError(
                `instance ${context.module}/${context.version}/${context.instance} did not listen on port ${port} within ${startTimeoutMs} ms${last ? `; last output:\n${last}` : ''}`,
                { output: last },
              );
            }
            await new Promise(resolve => setTimeout(resolve, wait));
            wait = Math.min(100, wait * 2);
          }
        },
        async stop(force) {
          stopping = true;
          const current = child;
          if (!current || exited) return;
          const gone = new Promise<void>(resolve => exitWaiters.push(resolve));
          current.kill(force ? 'SIGKILL' : 'SIGTERM');
          if (!force) {
            const timer = setTimeout(() => {
              if (!exited) current.kill('SIGKILL');
            }, killTimeoutMs);
            await gone;
            clearTimeout(timer);
          } else {
            await gone;
          }
        },
        onExit(listener) {
          listeners.push(listener);
        },
      };
      /** The output tail once the child's pipes are read to their end (waits at most 200 ms). */
      async function lastOutput(closed: Promise<void>, from: OutputTail): Promise<string> {
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([closed, new Promise(resolve => (timer = setTimeout(resolve, 200)))]);
        clearTimeout(timer);
        return from.toString();
      }
      function finish(exit: InstanceExit) {
        if (exited) return;
        exited = exit;
        for (const resolve of exitWaiters.splice(0)) resolve();
        if (!stopping) for (const listener of listeners) listener(exit);
      }
      return proxy;
    },
  };
}
