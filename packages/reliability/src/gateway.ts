import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { freePort, startNodeProcess, type NodeProcess } from '@x/testkit';
import { parse, stringify } from 'yaml';

/** Folder of `apps/gateway` (its `gateway.config.yaml` and `dist/cli.js`). */
export const GATEWAY_DIR = dirname(
  createRequire(import.meta.url).resolve('@x/gateway/package.json'),
);

/** One instance as the dashboard state (`/_x/state`) shows it. */
export interface GatewayInstance {
  readonly module: string;
  readonly version: string;
  readonly id: string;
  readonly state: string;
  readonly pid: number | undefined;
  readonly port: number | undefined;
  /** `unchecked`, `healthy` or `unhealthy` (out of rotation). */
  readonly health?: string | undefined;
}

/** Options of {@link startGateway}. */
export interface StartGatewayOptions {
  /**
   * Deep-merged over `apps/gateway/gateway.config.yaml`: objects are merged key by key, anything
   * else (arrays, scalars, `null`) replaces the default. E.g. `{ modules: { catalog: { versions:
   * { v1: { instances: 2 } } } } }`.
   */
  readonly config?: Record<string, unknown>;
  /** Extra environment of the gateway process (default: `LOG_LEVEL=warn`, no Redis). */
  readonly env?: Record<string, string | undefined>;
  /** `--host` (default: `server.host` of the configuration, 127.0.0.1). */
  readonly host?: string;
  /** How long to wait for the ready line. Default 45 000 ms. */
  readonly readyTimeoutMs?: number;
}

/** A gateway started through its CLI as a child process. */
export interface RunningGateway {
  /** Base URL with a trailing slash, e.g. `http://127.0.0.1:40123/`. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** The dispatcher's own front door (loopback), as the banner prints it. */
  readonly frontDoorUrl: string;
  /** The admin API's bearer token. */
  readonly token: string;
  readonly process: NodeProcess;
  /** The dashboard state (`GET /_x/state`). */
  state(): Promise<{ modules: DashboardModule[] } & Record<string, unknown>>;
  /** Every instance (optionally of one module / version), from the dashboard state. */
  instances(module?: string, version?: string): Promise<GatewayInstance[]>;
  /** Pids of the running instance processes (optionally of one module / version). */
  instancePids(module?: string, version?: string): Promise<number[]>;
  /** SIGTERM (the gateway drains and stops its instances), then SIGKILL what is left; removes the config. */
  close(): Promise<void>;
}

interface DashboardModule {
  readonly name: string;
  readonly versions: ReadonlyArray<{
    readonly name: string;
    readonly instances: ReadonlyArray<{
      readonly id: string;
      readonly state: string;
      readonly pid?: number;
      readonly port?: number;
      readonly health?: string;
    }>;
  }>;
}

/**
 * The default `gateway.config.yaml` as a plain object, with `dispatcher.listen: true`: the attack
 * tests also aim at the dispatcher's own loopback listener (`frontDoorUrl`).
 */
export function defaultGatewayConfig(): Record<string, unknown> {
  const config = parse(readFileSync(join(GATEWAY_DIR, 'gateway.config.yaml'), 'utf8')) as Record<
    string,
    unknown
  >;
  return deepMerge(config, { dispatcher: { listen: true } });
}

/** `overrides` merged over `base` (objects key by key; anything else replaces). */
export function deepMerge(
  base: Record<string, unknown>,
  overrides: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(overrides)) {
    const current = out[key];
    out[key] = isPlainObject(current) && isPlainObject(value) ? deepMerge(current, value) : value;
  }
  return out;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts `apps/gateway/dist/cli.js --config <temp file> --port <free port>` (memory mode, a random
 * admin token) and resolves once it prints its ready line.
 */
export async function startGateway(options: StartGatewayOptions = {}): Promise<RunningGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'x-reliability-gateway-'));
  const file = join(dir, 'gateway.config.yaml');
  writeFileSync(file, stringify(deepMerge(defaultGatewayConfig(), options.config ?? {})));
  const token = randomBytes(18).toString('base64url');
  const host = options.host ?? '127.0.0.1';
  const port = await freePort(host);
  let child: NodeProcess;
  try {
    child = await startNodeProcess(join(GATEWAY_DIR, 'dist', 'cli.js'), {
      args: ['--config', file, '--port', String(port), '--host', host],
      env: { LOG_LEVEL: 'warn', REDIS_URL: '', GATEWAY_ADMIN_TOKEN: token, ...options.env },
      readyPattern: /gateway ready at (http:\/\/\S+)/,
      timeoutMs: options.readyTimeoutMs ?? 45_000,
      cwd: GATEWAY_DIR,
    });
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const url = child.match![1]!;
  const frontDoorUrl = /front door\s+(http:\/\/\S+)/.exec(child.stdout())?.[1] ?? '';
  const state = async () =>
    (await (await fetch(`${url}_x/state`)).json()) as { modules: DashboardModule[] } & Record<
      string,
      unknown
    >;
  const instances = async (module?: string, version?: string) =>
    (await state()).modules
      .filter(m => module === undefined || m.name === module)
      .flatMap(m =>
        m.versions
          .filter(v => version === undefined || v.name === version)
          .flatMap(v =>
            v.instances.map(i => ({
              module: m.name,
              version: v.name,
              id: i.id,
              state: i.state,
              pid: i.pid,
              port: i.port,
              health: i.health,
            })),
          ),
      );
  const instancePids = async (module?: string, version?: string) =>
    (await instances(module, version))
      .map(i => i.pid)
      .filter((pid): pid is number => pid !== undefined && pid !== child.pid);
  let closing: Promise<void> | undefined;
  return {
    url,
    host,
    port,
    frontDoorUrl,
    token,
    process: child,
    state,
    instances,
    instancePids,
    close: () =>
      (closing ??= (async () => {
        const pids = await instancePids().catch(() => []);
        await child.kill('SIGTERM');
        for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
        rmSync(dir, { recursive: true, force: true });
      })()),
  };
}
