import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { compileDispatchRules, type DispatchRule } from '@x/dispatcher';
import { parseDocument } from 'yaml';
import { ConfigCheck, join } from './configCheck.js';
import { ConfigError } from './configError.js';
import { GatewayConfigFileSchema, type GatewayConfigFile } from './configSchema.js';
import { schemaIssues } from './configSchemaIssues.js';
import { define, withDefaults, without, withoutNulls } from './configSchemaValue.js';

/** pino log levels. */
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** Where the instances of a version come from. */
export type BackendConfig =
  /** Child processes: `command args…` with `PORT` set; `protocol: zmq` for ZeroMQ workers (no HTTP lifecycle). */
  | {
      readonly kind: 'process';
      readonly command: string;
      readonly args: readonly string[];
      readonly protocol: 'http' | 'zmq';
    }
  /** Instances that run elsewhere: instance `i` is `urls[i]`. */
  | { readonly kind: 'remote'; readonly urls: readonly string[] }
  /** A handler inside the gateway process. */
  | { readonly kind: 'builtin'; readonly name: 'welcome' };

/** One version of a module (`modules.<m>.versions.<v>`). */
export interface VersionConfig {
  readonly backend: BackendConfig;
  /** Manual scaling: instances started at once. */
  readonly instances: number;
  readonly maxConcurrentRequests: number;
  /** Extra environment of the child processes. */
  readonly env: Readonly<Record<string, string>>;
  /** How a dead instance is restarted. */
  readonly restart: {
    readonly initialDelayMs: number;
    readonly maxDelayMs: number;
    readonly maxRestarts: number;
  };
  /**
   * Active health checks of HTTP instances (`false`: off). A hung instance leaves rotation after
   * `unhealthyThreshold` failed probes (or `ejectAfterTimeouts` requests in a row past their
   * deadline) and is killed and restarted after `restartThreshold` failed probes.
   */
  readonly healthCheck: HealthCheckConfig | false;
}

/** `modules.<m>.versions.<v>.healthCheck`. */
export interface HealthCheckConfig {
  /** GET path probed. Default `/_ah/health`. */
  readonly path: string;
  /** Default 1 000 ms. */
  readonly intervalMs: number;
  /** Default 1 000 ms. */
  readonly timeoutMs: number;
  /** Failed probes in a row before the instance leaves rotation. Default 2. */
  readonly unhealthyThreshold: number;
  /** Passing probes in a row before it takes traffic again. Default 2. */
  readonly healthyThreshold: number;
  /** Failed probes in a row before it is killed and restarted. Default 10. */
  readonly restartThreshold: number;
  /** Requests in a row past their deadline before it leaves rotation. Default 3. */
  readonly ejectAfterTimeouts: number;
}

export interface ModuleConfig {
  readonly defaultVersion: string | undefined;
  readonly versions: Readonly<Record<string, VersionConfig>>;
}

export interface SplitConfig {
  readonly module: string;
  readonly weights: Readonly<Record<string, number>>;
  readonly stickyBy: 'cookie' | 'ip' | 'random';
}

/** How `/api/search` fans out: shard keys `0…count-1` placed on the instances of one version. */
export interface ShardsConfig {
  readonly module: string;
  readonly version: string;
  readonly count: number;
  /** Instances holding each key. */
  readonly replicas: number;
}

/** Where the reports workers are: the instances of a dispatcher version, or fixed addresses. */
export type WorkerEndpointsConfig =
  | { readonly kind: 'module'; readonly module: string; readonly version: string }
  | { readonly kind: 'addresses'; readonly addresses: readonly string[] };

export interface ResilienceConfig {
  readonly search: {
    readonly timeoutMs: number;
    readonly perTryTimeoutMs: number;
    readonly ejectAfterFailures: number;
    readonly ejectionMs: number;
    readonly retryBudgetPercent: number;
  };
  readonly orders: {
    readonly timeoutMs: number;
    readonly retries: number;
    readonly circuitOpenAfter: number;
    readonly circuitResetMs: number;
    readonly maxOpenPerHost: number;
    readonly expectedMs: number;
  };
  readonly reports: {
    readonly deadlineMs: number;
    readonly jobDeadlineMs: number;
    readonly jobRetries: number;
  };
}

/**
 * `replicas:`: several gateways behind a load balancer on one Redis (`docs/SCALING.md`). Only
 * used with a Redis URL; one process without Redis ignores it.
 */
export interface ReplicasConfig {
  /** This replica's id on the dashboard and in `X-Replica`. Default `hostname:pid`. */
  readonly id: string | undefined;
  /** How often this replica publishes its state snapshot to Redis. Default 1 000 ms. */
  readonly publishIntervalMs: number;
  /** A replica not heard from for this long is shown as gone (its key expires then). Default 5 000 ms. */
  readonly staleAfterMs: number;
  /**
   * A scheduled event still pending this long after its eta (its replica died) is taken over by
   * a live replica, exactly once. Default 3 000 ms.
   */
  readonly eventTakeoverMs: number;
}

/** The validated `gateway.config.yaml`. */
export interface GatewayConfig {
  /** The file it was read from. */
  readonly file: string;
  readonly server: {
    readonly host: string;
    readonly port: number;
    readonly drainTimeoutMs: number;
    /** Slow clients: the request head must arrive within this time, else 408 (also the front door's). */
    readonly headersTimeoutMs: number;
    /** Slow clients: the whole request (head and body) must arrive within this time, else 408. */
    readonly requestTimeoutMs: number;
    /** Largest request body the gateway forwards; more is a 413 (also the dispatcher's limit). */
    readonly maxBodyBytes: number;
    /**
     * Largest budget a client may give in `x-request-timeout-ms` (a larger one is cut to this;
     * docs/CONTEXT.md). Default: `dispatcher.requestTimeoutMs`, the gateway's request deadline.
     */
    readonly maxRequestBudgetMs: number;
    /**
     * Requests of one connection served at a time (HTTP/1.1 pipelining); later ones wait. Over
     * 16 times as many waiting, or a full connection making no progress for `requestTimeoutMs`,
     * closes the connection. Default 8.
     */
    readonly maxPipelinedRequests: number;
  };
  readonly admin: {
    readonly token: string | undefined;
    /** Wrong admin tokens one client address may send per `failureWindowMs` before 429. */
    readonly maxFailures: number;
    readonly failureWindowMs: number;
  };
  /** The dashboard's event streams and who may see it (`dashboard.ts`). */
  readonly dashboard: {
    /** Most open `/_x/events` streams; more are answered 503 `TOO_MANY_STREAMS`. */
    readonly maxStreams: number;
    /** A stream with more unsent bytes than this is closed. */
    readonly maxBufferedBytes: number;
    /** A stream whose client reads nothing for this long is closed. */
    readonly stallTimeoutMs: number;
    /** `/_x/`, `/_x/state` and `/_x/events` need the admin token. */
    readonly requireToken: boolean;
  };
  /** Traces for the dashboard's waterfall (`traceStore.ts`); off when `dashboardTraces` is 0. */
  readonly tracing: {
    /** Traces kept per endpoint; 0: off. */
    readonly dashboardTraces: number;
    /** Share of requests traced (0–1). */
    readonly sampleRatio: number;
    readonly maxSpansPerTrace: number;
    readonly maxSpans: number;
  };
  readonly logging: { readonly level: LogLevel };
  readonly dispatcher: {
    readonly host: string;
    /** Also serve the front door on its own loopback port (`port`). */
    readonly listen: boolean;
    readonly port: number;
    readonly defaultModule: string | undefined;
    readonly requestTimeoutMs: number;
  };
  readonly modules: Readonly<Record<string, ModuleConfig>>;
  readonly dispatch: readonly DispatchRule[];
  readonly splits: readonly SplitConfig[];
  readonly shards: ShardsConfig;
  readonly workers: { readonly reports: WorkerEndpointsConfig };
  readonly resilience: ResilienceConfig;
  readonly redis: { readonly url: string | undefined; readonly prefix: string };
  readonly replicas: ReplicasConfig;
  /** Edge rate limits (`rateLimit:`); none by default. */
  readonly rateLimit: RateLimitConfig;
}

/** Options of {@link parseConfig}. */
export interface ParseOptions {
  /** Shown in errors; relative script paths resolve from its folder. */
  readonly file: string;
  /** Folder of the built demo backends (`script: catalog` → `<dir>/catalog.js`). */
  readonly backendsDir: string;
}

/** Reads and validates a configuration file; throws {@link ConfigError} naming every bad field. */
export function loadConfig(file: string, backendsDir: string): GatewayConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(file, [
      {
        path: '',
        message: `cannot read the file (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
      },
    ]);
  }
  return parseConfig(text, { file, backendsDir });
}

/** The schema check, compiled on first use. */
let compiled: TypeCheck<typeof GatewayConfigFileSchema> | undefined;

/**
 * Validates YAML text against {@link GatewayConfigFileSchema} (types, ranges, unknown keys), then
 * the rules a schema cannot express (references between sections, files, cross-field limits);
 * throws {@link ConfigError} with one issue per bad field.
 */
export function parseConfig(text: string, options: ParseOptions): GatewayConfig {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      options.file,
      doc.errors.map(e => ({
        path: e.linePos ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '',
        message: e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, ''),
      })),
    );
  }
  let raw: unknown;
  try {
    raw = doc.toJS(); // throws on an alias bomb ("Excessive alias count")
  } catch (error) {
    throw new ConfigError(options.file, [{ path: '', message: (error as Error).message }]);
  }
  const schema = GatewayConfigFileSchema;
  const value = withoutNulls(schema, raw ?? {});
  const checker = (compiled ??= TypeCompiler.Compile(schema));
  const errors = checker.Check(value) ? [] : [...checker.Errors(value)];
  const check = new ConfigCheck();
  check.issues.push(...schemaIssues(errors));
  // The bad fields dropped (back to their defaults), the rules a schema cannot express are still
  // checked, so that one run names every bad field; a file beyond repair stops here.
  const repaired = errors.reduce<unknown>(
    (v, e) => (v === undefined ? undefined : without(v, e.path)),
    value,
  );
  if (repaired === undefined || (errors.length > 0 && !checker.Check(repaired)))
    throw new ConfigError(options.file, check.issues);
  const config = read(check, withDefaults(schema, repaired) as GatewayConfigFile, options);
  if (check.issues.length > 0) throw new ConfigError(options.file, check.issues);
  return config;
}

function readTracing(
  check: ConfigCheck,
  t: NonNullable<GatewayConfigFile['tracing']>,
): GatewayConfig['tracing'] {
  if (t.maxSpansPerTrace! > t.maxSpans!)
    check.fail(
      'tracing.maxSpansPerTrace',
      `must be <= tracing.maxSpans (${t.maxSpans}), got ${t.maxSpansPerTrace}`,
    );
  return {
    dashboardTraces: t.dashboardTraces!,
    sampleRatio: t.sampleRatio!,
    maxSpansPerTrace: t.maxSpansPerTrace!,
    maxSpans: t.maxSpans!,
  };
}

function read(check: ConfigCheck, f: GatewayConfigFile, options: ParseOptions): GatewayConfig {
  const server = f.server!;
  const admin = f.admin!;
  const dash = f.dashboard!;
  const disp = f.dispatcher!;
  const redis = f.redis!;
  const modules = readModules(check, f, options);
  const moduleNames = Object.keys(modules);
  const headersTimeoutMs = server.headersTimeoutMs!;
  const requestTimeoutMs = server.requestTimeoutMs!;
  if (headersTimeoutMs > requestTimeoutMs)
    check.fail(
      'server.headersTimeoutMs',
      `must be <= server.requestTimeoutMs (${requestTimeoutMs}), got ${headersTimeoutMs}`,
    );
  const defaultModule = disp.defaultModule ?? undefined;
  if (defaultModule !== undefined && !Object.hasOwn(modules, defaultModule))
    check.fail('dispatcher.defaultModule', unknownModule(defaultModule, moduleNames));

  return {
    file: options.file,
    server: {
      host: server.host!,
      port: server.port!,
      drainTimeoutMs: server.drainTimeoutMs!,
      headersTimeoutMs,
      requestTimeoutMs,
      maxBodyBytes: server.maxBodyBytes!,
      maxRequestBudgetMs: server.maxRequestBudgetMs ?? disp.requestTimeoutMs!,
      maxPipelinedRequests: server.maxPipelinedRequests!,
    },
    admin: {
      token: admin.token ?? undefined,
      maxFailures: admin.maxFailures!,
      failureWindowMs: admin.failureWindowMs!,
    },
    dashboard: {
      maxStreams: dash.maxStreams!,
      maxBufferedBytes: dash.maxBufferedBytes!,
      stallTimeoutMs: dash.stallTimeoutMs!,
      requireToken: dash.requireToken!,
    },
    tracing: readTracing(check, f.tracing!),
    logging: { level: f.logging!.level! },
    dispatcher: {
      host: disp.host!,
      listen: disp.listen!,
      port: disp.port!,
      defaultModule,
      requestTimeoutMs: disp.requestTimeoutMs!,
    },
    modules,
    dispatch: readDispatch(check, f.dispatch!, moduleNames),
    splits: readSplits(check, f.splits!, modules),
    shards: readShards(check, f.shards, modules),
    workers: readWorkers(check, f.workers, modules),
    resilience: readResilience(f.resilience!),
    redis: { url: redis.url ?? undefined, prefix: redis.prefix! },
    replicas: readReplicas(check, f.replicas!),
    rateLimit: {
      perClient: f.rateLimit!.perClient ?? undefined,
      global: f.rateLimit!.global ?? undefined,
      clientAddressHeader: f.rateLimit!.clientAddressHeader ?? undefined,
    },
  };
}

/** A fixed-window limit: `points` requests per `durationMs`. */
export interface WindowLimit {
  readonly points: number;
  readonly durationMs: number;
}

/** `rateLimit:`: edge limits, shared by the replicas through Redis when REDIS_URL is set. */
export interface RateLimitConfig {
  readonly perClient: WindowLimit | undefined;
  readonly global: WindowLimit | undefined;
  /** Header with the client address set by a trusted load balancer (first value). */
  readonly clientAddressHeader: string | undefined;
}

/** `replicas:` (validated by the schema; the cross-field rule is checked here). */
function readReplicas(
  check: ConfigCheck,
  r: NonNullable<GatewayConfigFile['replicas']>,
): ReplicasConfig {
  const publishIntervalMs = r.publishIntervalMs!;
  const staleAfterMs = r.staleAfterMs!;
  if (staleAfterMs < 2 * publishIntervalMs)
    check.fail(
      'replicas.staleAfterMs',
      `expected at least 2 × replicas.publishIntervalMs (${2 * publishIntervalMs}), got ${staleAfterMs}`,
    );
  return {
    id: r.id ?? undefined,
    publishIntervalMs,
    staleAfterMs,
    eventTakeoverMs: r.eventTakeoverMs!,
  };
}

function unknownModule(name: string, known: readonly string[]): string {
  return `module ${JSON.stringify(name)} is not defined in modules (known: ${known.join(', ') || 'none'})`;
}

type ModuleFile = GatewayConfigFile['modules'][string];
type VersionFile = ModuleFile['versions'][string];

function readModules(
  check: ConfigCheck,
  f: GatewayConfigFile,
  options: ParseOptions,
): Record<string, ModuleConfig> {
  const out: Record<string, ModuleConfig> = {};
  for (const [name, mod] of Object.entries(f.modules)) {
    const path = join('modules', name);
    const versions: Record<string, VersionConfig> = {};
    for (const [version, spec] of Object.entries(mod.versions))
      define(
        versions,
        version,
        readVersion(check, spec, join(join(path, 'versions'), version), options),
      );
    const defaultVersion = mod.defaultVersion ?? undefined;
    if (defaultVersion !== undefined && !Object.hasOwn(versions, defaultVersion))
      check.fail(
        join(path, 'defaultVersion'),
        `version ${JSON.stringify(defaultVersion)} is not defined`,
      );
    define(out, name, { defaultVersion, versions });
  }
  return out;
}

function readVersion(
  check: ConfigCheck,
  v: VersionFile,
  path: string,
  options: ParseOptions,
): VersionConfig {
  const restart = v.restart!;
  const initialDelayMs = restart.initialDelayMs!;
  const maxDelayMs = restart.maxDelayMs ?? Math.max(30_000, initialDelayMs);
  if (maxDelayMs < initialDelayMs)
    check.fail(
      join(path, 'restart.maxDelayMs'),
      `must be >= restart.initialDelayMs (${initialDelayMs})`,
    );
  const healthCheck = v.healthCheck!;
  return {
    backend: readBackend(check, v.backend, join(path, 'backend'), options),
    instances: v.instances!,
    maxConcurrentRequests: v.maxConcurrentRequests!,
    env: Object.fromEntries(Object.entries(v.env!).map(([k, value]) => [k, String(value)])),
    healthCheck:
      healthCheck === false
        ? false
        : {
            path: healthCheck.path!,
            intervalMs: healthCheck.intervalMs!,
            timeoutMs: healthCheck.timeoutMs!,
            unhealthyThreshold: healthCheck.unhealthyThreshold!,
            healthyThreshold: healthCheck.healthyThreshold!,
            restartThreshold: healthCheck.restartThreshold!,
            ejectAfterTimeouts: healthCheck.ejectAfterTimeouts!,
          },
    restart: { initialDelayMs, maxDelayMs, maxRestarts: restart.maxRestarts! },
  };
}

function readBackend(
  check: ConfigCheck,
  b: VersionFile['backend'],
  path: string,
  options: ParseOptions,
): BackendConfig {
  const kinds = (['script', 'command', 'remote', 'builtin'] as const).filter(
    k => b[k] !== undefined,
  );
  if (kinds.length !== 1) {
    check.fail(
      path,
      `give exactly one of script, command, remote or builtin, got ${kinds.length === 0 ? 'none' : kinds.join(' and ')}`,
    );
    return { kind: 'builtin', name: 'welcome' };
  }
  const protocol = b.protocol!;
  const args = (b.args ?? []).map(String);
  if (b.remote !== undefined) return { kind: 'remote', urls: b.remote };
  if (b.builtin !== undefined) return { kind: 'builtin', name: b.builtin };
  if (b.command !== undefined) return { kind: 'process', command: b.command, args, protocol };
  const script = b.script!;
  const file = /^[a-z][a-z0-9-]*$/.test(script)
    ? resolve(options.backendsDir, `${script}.js`)
    : isAbsolute(script)
      ? script
      : resolve(dirname(options.file), script);
  if (!existsSync(file)) {
    const built = existsSync(options.backendsDir)
      ? readdirSync(options.backendsDir)
          .filter(name => name.endsWith('.js'))
          .map(name => name.slice(0, -3))
      : [];
    check.fail(
      join(path, 'script'),
      `no such file ${file}${built.length ? ` (built-in scripts: ${built.join(', ')})` : ' (run the build first)'}`,
    );
  }
  return { kind: 'process', command: process.execPath, args: [file, ...args], protocol };
}

function readDispatch(
  check: ConfigCheck,
  list: NonNullable<GatewayConfigFile['dispatch']>,
  modules: readonly string[],
): DispatchRule[] {
  const rules: DispatchRule[] = [];
  list.forEach((rule, i) => {
    const path = join('dispatch', i);
    if ((rule.module === undefined) === (rule.service === undefined)) {
      check.fail(path, 'give exactly one of module and service');
      return;
    }
    const moduleKey = rule.module !== undefined ? 'module' : 'service';
    const module = (rule.module ?? rule.service)!;
    if (!modules.includes(module)) {
      check.fail(join(path, moduleKey), unknownModule(module, modules));
      return;
    }
    try {
      compileDispatchRules([{ url: rule.url, module }], { modules: [...modules] });
      rules.push({ url: rule.url, module });
    } catch (error) {
      check.fail(
        join(path, 'url'),
        (error as Error).message.replace(/^dispatch rule \d+:\s*(dispatch\[\d+\]\.url:\s*)?/i, ''),
      );
    }
  });
  return rules;
}

function readSplits(
  check: ConfigCheck,
  list: NonNullable<GatewayConfigFile['splits']>,
  modules: Record<string, ModuleConfig>,
): SplitConfig[] {
  const seen = new Set<string>();
  return list.map((split, i) => {
    const path = join('splits', i);
    const { module } = split;
    const mod = Object.hasOwn(modules, module) ? modules[module] : undefined;
    if (!mod) check.fail(join(path, 'module'), unknownModule(module, Object.keys(modules)));
    if (seen.has(module)) check.fail(join(path, 'module'), `module ${module} is split twice`);
    seen.add(module);
    const weightsPath = join(path, 'weights');
    const weights = Object.fromEntries(Object.entries(split.weights));
    for (const version of Object.keys(weights))
      if (mod && !Object.hasOwn(mod.versions, version))
        check.fail(
          join(weightsPath, version),
          `version ${JSON.stringify(version)} is not defined in modules.${module}.versions`,
        );
    if (Object.keys(weights).length > 0 && !Object.values(weights).some(w => w > 0))
      check.fail(weightsPath, 'at least one weight must be > 0');
    return { module, weights, stickyBy: split.stickyBy! };
  });
}

function versionRef(
  check: ConfigCheck,
  fields: { readonly module?: string; readonly version?: string },
  path: string,
  modules: Record<string, ModuleConfig>,
): { module: string; version: string } {
  const module = fields.module ?? '';
  const mod = Object.hasOwn(modules, module) ? modules[module] : undefined;
  if (!mod) check.fail(join(path, 'module'), unknownModule(module, Object.keys(modules)));
  const fallback = mod ? (mod.defaultVersion ?? Object.keys(mod.versions)[0] ?? '') : '';
  const version = fields.version ?? fallback;
  if (mod && !Object.hasOwn(mod.versions, version))
    check.fail(
      join(path, 'version'),
      `version ${JSON.stringify(version)} is not defined in modules.${module}.versions`,
    );
  return { module, version };
}

function readShards(
  check: ConfigCheck,
  s: GatewayConfigFile['shards'],
  modules: Record<string, ModuleConfig>,
): ShardsConfig {
  const { module, version } = versionRef(check, s, 'shards', modules);
  const count = s.count!;
  const replicas = s.replicas!;
  if (replicas > count)
    check.fail('shards.replicas', `must be <= shards.count (${count}), got ${replicas}`);
  const backend = modules[module]?.versions[version]?.backend;
  if (backend && backend.kind !== 'process')
    check.fail(
      'shards.version',
      `shards need child-process instances (backend.script or backend.command), ${module}/${version} is ${backend.kind}`,
    );
  return { module, version, count, replicas };
}

function readWorkers(
  check: ConfigCheck,
  w: GatewayConfigFile['workers'],
  modules: Record<string, ModuleConfig>,
): GatewayConfig['workers'] {
  const r = w.reports;
  if (r.addresses !== undefined) {
    if (r.module !== undefined)
      check.fail('workers.reports', 'give either module (and version) or addresses, not both');
    return { reports: { kind: 'addresses', addresses: r.addresses } };
  }
  if (r.module === undefined) {
    check.fail('workers.reports', 'give module (and version) or addresses');
    return { reports: { kind: 'addresses', addresses: [] } };
  }
  const { module, version } = versionRef(check, r, 'workers.reports', modules);
  const backend = modules[module]?.versions[version]?.backend;
  if (backend && (backend.kind !== 'process' || backend.protocol !== 'zmq'))
    check.fail(
      'workers.reports.module',
      `${module}/${version} must run ZeroMQ workers (backend.protocol: zmq)`,
    );
  return { reports: { kind: 'module', module, version } };
}

function readResilience(r: NonNullable<GatewayConfigFile['resilience']>): ResilienceConfig {
  const s = r.search!;
  const o = r.orders!;
  const p = r.reports!;
  return {
    search: {
      timeoutMs: s.timeoutMs!,
      perTryTimeoutMs: s.perTryTimeoutMs ?? Math.min(1_000, s.timeoutMs!),
      ejectAfterFailures: s.ejectAfterFailures!,
      ejectionMs: s.ejectionMs!,
      retryBudgetPercent: s.retryBudgetPercent!,
    },
    orders: {
      timeoutMs: o.timeoutMs!,
      retries: o.retries!,
      circuitOpenAfter: o.circuitOpenAfter!,
      circuitResetMs: o.circuitResetMs!,
      maxOpenPerHost: o.maxOpenPerHost!,
      expectedMs: o.expectedMs!,
    },
    reports: {
      deadlineMs: p.deadlineMs!,
      jobDeadlineMs: p.jobDeadlineMs!,
      jobRetries: p.jobRetries!,
    },
  };
}
