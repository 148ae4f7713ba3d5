import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startNodeProcess, type NodeProcess } from '@x/testkit';
import { parse, stringify } from 'yaml';
import type { DashboardSnapshot } from '../src/dashboardState.js';

export const APP_DIR = join(import.meta.dirname, '..');
export const CLI = join(APP_DIR, 'dist', 'cli.js');
export const ADMIN_TOKEN = 'test-admin-token-0123456789';

/** The default `gateway.config.yaml` as a plain object, to change and write elsewhere. */
export function defaultConfig(): Record<string, any> {
  return parse(readFileSync(join(APP_DIR, 'gateway.config.yaml'), 'utf8')) as Record<string, any>;
}

/**
 * The default configuration with roomier timeouts: CI machines run every package's tests at once,
 * and a slow-call breaker or a 1 s per-try deadline would turn that load into fallbacks.
 */
export function testConfig(): Record<string, any> {
  const config = defaultConfig();
  config.tracing.sampleRatio = 1; // the trace tests look at any request's trace
  Object.assign(config.resilience.orders, { timeoutMs: 5_000, expectedMs: 2_000 });
  Object.assign(config.resilience.search, { timeoutMs: 5_000, perTryTimeoutMs: 2_500 });
  // A killed catalog instance stays down for the rest of the test.
  config.modules.catalog.versions.v1.restart = {
    initialDelayMs: 60_000,
    maxDelayMs: 60_000,
    maxRestarts: 1,
  };
  return config;
}

const written: string[] = [];

/** Removes the files {@link writeConfig} wrote (call it in `afterAll`). */
export function removeConfigs(): void {
  for (const dir of written.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** Writes a configuration (an object or raw YAML text) to a fresh temporary file. */
export function writeConfig(config: Record<string, unknown> | string): string {
  const dir = mkdtempSync(join(tmpdir(), 'x-gateway-'));
  written.push(dir);
  const file = join(dir, 'gateway.config.yaml');
  writeFileSync(file, typeof config === 'string' ? config : stringify(config));
  return file;
}

/** A gateway started through its CLI as a child process. */
export interface RunningGateway {
  readonly process: NodeProcess;
  readonly url: string;
  readonly token: string;
  state(): Promise<DashboardSnapshot>;
  /** Pids of every instance process (from the dashboard state). */
  instancePids(): Promise<number[]>;
}

/** Starts `dist/cli.js --config <file> --port <free port>` and waits for its ready line. */
export async function startGateway(
  config: Record<string, unknown>,
  env: Record<string, string | undefined> = {},
): Promise<RunningGateway> {
  const file = writeConfig(config);
  const port = await freePort();
  const child = await startNodeProcess(CLI, {
    args: ['--config', file, '--port', String(port)],
    env: { LOG_LEVEL: 'warn', GATEWAY_ADMIN_TOKEN: ADMIN_TOKEN, REDIS_URL: '', ...env },
    readyPattern: /gateway ready at (http:\/\/\S+)/,
    timeoutMs: 45_000,
    cwd: APP_DIR,
  });
  const url = child.match![1]!;
  const token = /admin token\s+(\S+)/.exec(child.stdout())?.[1] ?? '';
  const state = async () => (await (await fetch(`${url}_x/state`)).json()) as DashboardSnapshot;
  return {
    process: child,
    url,
    token,
    state,
    instancePids: async () =>
      (await state()).modules.flatMap(m =>
        m.versions.flatMap(v =>
          v.instances.map(i => i.pid).filter((p): p is number => p !== undefined),
        ),
      ),
  };
}

/** Runs the CLI to completion (for configurations that must be refused). */
export function runCli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise(resolve => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, REDIS_URL: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', chunk => (stdout += chunk));
    child.stderr.on('data', chunk => (stderr += chunk));
    child.on('close', code => resolve({ code, stdout, stderr }));
  });
}

/** True while a process with this pid exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Every descendant of `pid` (children, grandchildren…), from `ps`. */
export function descendants(pid: number): number[] {
  const table = execFileSync('ps', ['-eo', 'pid=,ppid='], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map(line => line.trim().split(/\s+/).map(Number) as [number, number]);
  const out: number[] = [];
  const walk = (parent: number) => {
    for (const [child, ppid] of table)
      if (ppid === parent) {
        out.push(child);
        walk(child);
      }
  };
  walk(pid);
  return out;
}

/** GET (or any method) and decode the JSON body. */
export async function json<T = any>(
  url: string,
  init?: RequestInit,
): Promise<{ status: number; body: T; headers: Headers }> {
  const res = await fetch(url, init);
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, body: body as T, headers: res.headers };
}
