import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { compileDispatchRules, type DispatchRule } from '@x/dispatcher';
import { parseDocument } from 'yaml';
import { ConfigCheck, describe, join, type Fields } from './configCheck.js';
import { ConfigError } from './configError.js';

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
  readonly logging: { readonly level: LogLevel };
  readonly dispatcher: {
    readonly host: string;
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
}

/** Options of {@link parseConfig}. */
export interface ParseOptions {
  /** Shown in errors; relative script paths resolve from its folder. */
  readonly file: string;
  /** Folder of the built demo backends (`script: catalog` → `<dir>/catalog.js`). */
  readonly backendsDir: string;
}

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const LABEL_HINT = 'a lowercase host-name label (a-z, 0-9, -)';
const LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const DAY = 86_400_000;

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

/** Validates YAML text; throws {@link ConfigError} with one issue per bad field. */
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
  const check = new ConfigCheck();
  const config = read(check, raw, options);
  if (check.issues.length > 0) throw new ConfigError(options.file, check.issues);
  return config;
}

function read(check: ConfigCheck, raw: unknown, options: ParseOptions): GatewayConfig {
  const root = check.requiredObject(raw, '', [
    'server',
    'admin',
    'dashboard',
    'logging',
    'dispatcher',
    'modules',
    'dispatch',
    'splits',
    'shards',
    'workers',
    'resilience',
    'redis',
    'replicas',
  ]);

  const server =
    check.object(root.server, 'server', [
      'host',
      'port',
      'drainTimeoutMs',
      'headersTimeoutMs',
      'requestTimeoutMs',
      'maxBodyBytes',
      'maxRequestBudgetMs',
    ]) ?? {};
  const admin =
    check.object(root.admin, 'admin', ['token', 'maxFailures', 'failureWindowMs']) ?? {};
  const dash =
    check.object(root.dashboard, 'dashboard', [
      'maxStreams',
      'maxBufferedBytes',
      'stallTimeoutMs',
      'requireToken',
    ]) ?? {};
  const logging = check.object(root.logging, 'logging', ['level']) ?? {};
  const disp =
    check.object(root.dispatcher, 'dispatcher', [
      'host',
      'port',
      'defaultModule',
      'requestTimeoutMs',
    ]) ?? {};
  const redis = check.object(root.redis, 'redis', ['url', 'prefix']) ?? {};

  const modules = readModules(check, root.modules, options);
  const moduleNames = Object.keys(modules);
  const headersTimeoutMs = check.int(server.headersTimeoutMs, 'server.headersTimeoutMs', 10_000, {
    min: 1,
    max: DAY,
  });
  const requestTimeoutMs = check.int(server.requestTimeoutMs, 'server.requestTimeoutMs', 30_000, {
    min: 1,
    max: DAY,
  });
  if (headersTimeoutMs > requestTimeoutMs)
    check.fail(
      'server.headersTimeoutMs',
      `must be <= server.requestTimeoutMs (${requestTimeoutMs}), got ${headersTimeoutMs}`,
    );
  const dispatcherTimeoutMs = check.int(
    disp.requestTimeoutMs,
    'dispatcher.requestTimeoutMs',
    10_000,
    { min: 1, max: DAY },
  );
  const maxRequestBudgetMs = check.int(
    server.maxRequestBudgetMs,
    'server.maxRequestBudgetMs',
    dispatcherTimeoutMs,
    { min: 1, max: DAY },
  );
  const defaultModule = check.optionalString(disp.defaultModule, 'dispatcher.defaultModule');
  if (defaultModule !== undefined && modules[defaultModule] === undefined)
    check.fail('dispatcher.defaultModule', unknownModule(defaultModule, moduleNames));

  return {
    file: options.file,
    server: {
      host: check.string(server.host, 'server.host', '127.0.0.1'),
      port: check.int(server.port, 'server.port', 8080, { min: 0, max: 65535 }),
      drainTimeoutMs: check.int(server.drainTimeoutMs, 'server.drainTimeoutMs', 10_000, {
        min: 0,
        max: DAY,
      }),
      headersTimeoutMs,
      requestTimeoutMs,
      maxBodyBytes: check.int(server.maxBodyBytes, 'server.maxBodyBytes', 32 * 1024 * 1024, {
        min: 1,
        max: 1024 * 1024 * 1024,
      }),
      maxRequestBudgetMs,
    },
    admin: {
      token: check.optionalString(
        admin.token,
        'admin.token',
        /^.{16,}$/,
        'a token of at least 16 characters',
      ),
      maxFailures: check.int(admin.maxFailures, 'admin.maxFailures', 10, {
        min: 1,
        max: 1_000_000,
      }),
      failureWindowMs: check.int(admin.failureWindowMs, 'admin.failureWindowMs', 60_000, {
        min: 1,
        max: DAY,
      }),
    },
    dashboard: {
      maxStreams: check.int(dash.maxStreams, 'dashboard.maxStreams', 256, { min: 0, max: 100_000 }),
      maxBufferedBytes: check.int(
        dash.maxBufferedBytes,
        'dashboard.maxBufferedBytes',
        1024 * 1024,
        { min: 1024, max: 1024 * 1024 * 1024 },
      ),
      stallTimeoutMs: check.int(dash.stallTimeoutMs, 'dashboard.stallTimeoutMs', 30_000, {
        min: 1,
        max: DAY,
      }),
      requireToken: check.bool(dash.requireToken, 'dashboard.requireToken', false),
    },
    logging: { level: check.oneOf(logging.level, 'logging.level', LEVELS, 'info') },
    dispatcher: {
      host: check.string(
        disp.host,
        'dispatcher.host',
        'localhost',
        /^[a-z0-9.-]+$/,
        'a lowercase host name',
      ),
      port: check.int(disp.port, 'dispatcher.port', 0, { min: 0, max: 65535 }),
      defaultModule,
      requestTimeoutMs: dispatcherTimeoutMs,
    },
    modules,
    dispatch: readDispatch(check, root.dispatch, moduleNames),
    splits: readSplits(check, root.splits, modules),
    shards: readShards(check, root.shards, modules),
    workers: readWorkers(check, root.workers, modules),
    resilience: readResilience(check, root.resilience),
    redis: {
      url: check.optionalString(
        redis.url,
        'redis.url',
        /^rediss?:\/\//,
        'a redis:// or rediss:// URL',
      ),
      prefix: check.string(
        redis.prefix,
        'redis.prefix',
        'x-gateway',
        /^[A-Za-z0-9:_-]+$/,
        'letters, digits, :, _ or -',
      ),
    },
    replicas: readReplicas(check, root.replicas),
  };
}

/** `replicas:` (kept in one place so a schema can take it over as one object). */
function readReplicas(check: ConfigCheck, raw: unknown): ReplicasConfig {
  const r =
    check.object(raw, 'replicas', ['id', 'publishIntervalMs', 'staleAfterMs', 'eventTakeoverMs']) ??
    {};
  const publishIntervalMs = check.int(r.publishIntervalMs, 'replicas.publishIntervalMs', 1_000, {
    min: 100,
    max: 60_000,
  });
  const staleAfterMs = check.int(r.staleAfterMs, 'replicas.staleAfterMs', 5_000, {
    min: 200,
    max: 600_000,
  });
  if (staleAfterMs < 2 * publishIntervalMs)
    check.fail(
      'replicas.staleAfterMs',
      `expected at least 2 × replicas.publishIntervalMs (${2 * publishIntervalMs}), got ${staleAfterMs}`,
    );
  return {
    id: check.optionalString(
      r.id,
      'replicas.id',
      /^[A-Za-z0-9._:-]{1,100}$/,
      'letters, digits, ., _, : or - (at most 100)',
    ),
    publishIntervalMs,
    staleAfterMs,
    eventTakeoverMs: check.int(r.eventTakeoverMs, 'replicas.eventTakeoverMs', 3_000, {
      min: 100,
      max: DAY,
    }),
  };
}

function unknownModule(name: string, known: readonly string[]): string {
  return `module ${JSON.stringify(name)} is not defined in modules (known: ${known.join(', ') || 'none'})`;
}

function readModules(
  check: ConfigCheck,
  raw: unknown,
  options: ParseOptions,
): Record<string, ModuleConfig> {
  const fields = check.requiredObject(raw, 'modules');
  const out: Record<string, ModuleConfig> = {};
  if (Object.keys(fields).length === 0 && raw !== undefined)
    check.fail('modules', 'define at least one module');
  for (const [name, value] of Object.entries(fields)) {
    const path = join('modules', name);
    if (!LABEL.test(name)) check.fail(path, `module names must be ${LABEL_HINT}`);
    const mod = check.requiredObject(value, path, ['defaultVersion', 'versions']);
    const versionsPath = join(path, 'versions');
    const versionFields = check.requiredObject(mod.versions, versionsPath);
    const versions: Record<string, VersionConfig> = {};
    if (Object.keys(versionFields).length === 0 && mod.versions !== undefined)
      check.fail(versionsPath, 'define at least one version');
    for (const [version, spec] of Object.entries(versionFields)) {
      const vPath = join(versionsPath, version);
      if (!LABEL.test(version)) check.fail(vPath, `version names must be ${LABEL_HINT}`);
      versions[version] = readVersion(check, spec, vPath, options);
    }
    const defaultVersion = check.optionalString(mod.defaultVersion, join(path, 'defaultVersion'));
    if (defaultVersion !== undefined && versions[defaultVersion] === undefined)
      check.fail(
        join(path, 'defaultVersion'),
        `version ${JSON.stringify(defaultVersion)} is not defined`,
      );
    out[name] = { defaultVersion, versions };
  }
  return out;
}

function readVersion(
  check: ConfigCheck,
  raw: unknown,
  path: string,
  options: ParseOptions,
): VersionConfig {
  const v = check.requiredObject(raw, path, [
    'backend',
    'instances',
    'maxConcurrentRequests',
    'env',
    'restart',
    'healthCheck',
  ]);
  const restart =
    check.object(v.restart, join(path, 'restart'), [
      'initialDelayMs',
      'maxDelayMs',
      'maxRestarts',
    ]) ?? {};
  const initialDelayMs = check.int(
    restart.initialDelayMs,
    join(path, 'restart.initialDelayMs'),
    100,
    { min: 1, max: DAY },
  );
  const maxDelayMs = check.int(
    restart.maxDelayMs,
    join(path, 'restart.maxDelayMs'),
    Math.max(30_000, initialDelayMs),
    {
      min: 1,
      max: DAY,
    },
  );
  if (maxDelayMs < initialDelayMs)
    check.fail(
      join(path, 'restart.maxDelayMs'),
      `must be >= restart.initialDelayMs (${initialDelayMs})`,
    );
  return {
    backend: readBackend(check, v.backend, join(path, 'backend'), options),
    instances: instancesOf(check, v.instances, join(path, 'instances')),
    maxConcurrentRequests: check.int(
      v.maxConcurrentRequests,
      join(path, 'maxConcurrentRequests'),
      100,
      { min: 1, max: 100_000 },
    ),
    env: check.strings(v.env, join(path, 'env')),
    healthCheck: readHealthCheck(check, v.healthCheck, join(path, 'healthCheck')),
    restart: {
      initialDelayMs,
      maxDelayMs,
      maxRestarts: check.int(restart.maxRestarts, join(path, 'restart.maxRestarts'), 10, {
        min: 0,
        max: 1000,
      }),
    },
  };
}

function readHealthCheck(
  check: ConfigCheck,
  raw: unknown,
  path: string,
): HealthCheckConfig | false {
  if (raw === false) return false;
  const h =
    check.object(raw, path, [
      'path',
      'intervalMs',
      'timeoutMs',
      'unhealthyThreshold',
      'healthyThreshold',
      'restartThreshold',
      'ejectAfterTimeouts',
    ]) ?? {};
  const count = (key: string, fallback: number) =>
    check.int(h[key], join(path, key), fallback, { min: 1, max: 1_000 });
  return {
    path: check.string(
      h.path,
      join(path, 'path'),
      '/_ah/health',
      /^\/\S*$/,
      'a path starting with /',
    ),
    intervalMs: check.int(h.intervalMs, join(path, 'intervalMs'), 1_000, { min: 10, max: DAY }),
    timeoutMs: check.int(h.timeoutMs, join(path, 'timeoutMs'), 1_000, { min: 10, max: DAY }),
    unhealthyThreshold: count('unhealthyThreshold', 2),
    healthyThreshold: count('healthyThreshold', 2),
    restartThreshold: count('restartThreshold', 10),
    ejectAfterTimeouts: count('ejectAfterTimeouts', 3),
  };
}

const MAX_INSTANCES = 64;

function instancesOf(check: ConfigCheck, value: unknown, path: string): number {
  const n = check.int(value, path, 1, { min: 1 });
  if (n > MAX_INSTANCES) {
    check.fail(path, `expected at most ${MAX_INSTANCES} instances, got ${n}`);
    return 1;
  }
  return n;
}

function readBackend(
  check: ConfigCheck,
  raw: unknown,
  path: string,
  options: ParseOptions,
): BackendConfig {
  const b = check.requiredObject(raw, path, [
    'script',
    'command',
    'args',
    'protocol',
    'remote',
    'builtin',
  ]);
  const kinds = ['script', 'command', 'remote', 'builtin'].filter(k => b[k] !== undefined);
  if (kinds.length !== 1) {
    if (raw !== undefined && raw !== null)
      check.fail(
        path,
        `give exactly one of script, command, remote or builtin, got ${kinds.length === 0 ? 'none' : kinds.join(' and ')}`,
      );
    return { kind: 'builtin', name: 'welcome' };
  }
  const protocol = check.oneOf(
    b.protocol,
    join(path, 'protocol'),
    ['http', 'zmq'] as const,
    'http',
  );
  const args = check.list(b.args, join(path, 'args')).map((a, i) => {
    if (typeof a !== 'string' && typeof a !== 'number')
      check.fail(join(join(path, 'args'), i), `expected a string, got ${describe(a)}`);
    return String(a);
  });
  if (b.remote !== undefined) {
    const urls = check
      .list(b.remote, join(path, 'remote'))
      .map((u, i) =>
        check.string(
          u,
          join(join(path, 'remote'), i),
          'http://invalid',
          /^https?:\/\/[^/\s]+\/?$/,
          'an http(s)://host:port URL',
        ),
      );
    if (urls.length === 0) check.fail(join(path, 'remote'), 'expected at least one URL');
    return { kind: 'remote', urls };
  }
  if (b.builtin !== undefined)
    return {
      kind: 'builtin',
      name: check.oneOf(b.builtin, join(path, 'builtin'), ['welcome'] as const, 'welcome'),
    };
  if (b.command !== undefined)
    return {
      kind: 'process',
      command: check.string(b.command, join(path, 'command'), 'node'),
      args,
      protocol,
    };
  const script = check.string(b.script, join(path, 'script'), '');
  if (script === '') return { kind: 'process', command: process.execPath, args, protocol };
  const file = /^[a-z][a-z0-9-]*$/.test(script)
    ? resolve(options.backendsDir, `${script}.js`)
    : isAbsolute(script)
      ? script
      : resolve(dirname(options.file), script);
  if (!existsSync(file)) {
    const built = existsSync(options.backendsDir)
      ? readdirSync(options.backendsDir)
          .filter(f => f.endsWith('.js'))
          .map(f => f.slice(0, -3))
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
  raw: unknown,
  modules: readonly string[],
): DispatchRule[] {
  const rules: DispatchRule[] = [];
  check.list(raw, 'dispatch').forEach((entry, i) => {
    const path = join('dispatch', i);
    const rule = check.requiredObject(entry, path, ['url', 'module', 'service']);
    const url = check.string(rule.url, join(path, 'url'), '');
    const moduleKey = rule.module !== undefined ? 'module' : 'service';
    const module = check.string(rule[moduleKey], join(path, moduleKey), '');
    if (module !== '' && !modules.includes(module))
      check.fail(join(path, moduleKey), unknownModule(module, modules));
    if (url === '' || module === '' || !modules.includes(module)) return;
    try {
      compileDispatchRules([{ url, module }], { modules: [...modules] });
      rules.push({ url, module });
    } catch (error) {
      check.fail(join(path, 'url'), (error as Error).message.replace(/^dispatch rule 0:?\s*/i, ''));
    }
  });
  return rules;
}

function readSplits(
  check: ConfigCheck,
  raw: unknown,
  modules: Record<string, ModuleConfig>,
): SplitConfig[] {
  const out: SplitConfig[] = [];
  const seen = new Set<string>();
  check.list(raw, 'splits').forEach((entry, i) => {
    const path = join('splits', i);
    const split = check.requiredObject(entry, path, ['module', 'weights', 'stickyBy']);
    const module = check.string(split.module, join(path, 'module'), '');
    const mod = modules[module];
    if (module !== '' && !mod)
      check.fail(join(path, 'module'), unknownModule(module, Object.keys(modules)));
    if (seen.has(module)) check.fail(join(path, 'module'), `module ${module} is split twice`);
    seen.add(module);
    const weightsPath = join(path, 'weights');
    const fields = check.requiredObject(split.weights, weightsPath);
    const weights: Record<string, number> = {};
    for (const [version, w] of Object.entries(fields)) {
      const wPath = join(weightsPath, version);
      weights[version] = check.number(w, wPath, 0, { min: 0 });
      if (mod && mod.versions[version] === undefined)
        check.fail(
          wPath,
          `version ${JSON.stringify(version)} is not defined in modules.${module}.versions`,
        );
    }
    if (Object.keys(fields).length > 0 && !Object.values(weights).some(w => w > 0))
      check.fail(weightsPath, 'at least one weight must be > 0');
    out.push({
      module,
      weights,
      stickyBy: check.oneOf(
        split.stickyBy,
        join(path, 'stickyBy'),
        ['cookie', 'ip', 'random'] as const,
        'cookie',
      ),
    });
  });
  return out;
}

function versionRef(
  check: ConfigCheck,
  fields: Fields,
  path: string,
  modules: Record<string, ModuleConfig>,
): { module: string; version: string } {
  const module = check.string(fields.module, join(path, 'module'), '');
  const mod = modules[module];
  if (module !== '' && !mod)
    check.fail(join(path, 'module'), unknownModule(module, Object.keys(modules)));
  const fallback = mod ? (mod.defaultVersion ?? Object.keys(mod.versions)[0] ?? '') : '';
  const version = check.string(fields.version, join(path, 'version'), fallback);
  if (mod && mod.versions[version] === undefined)
    check.fail(
      join(path, 'version'),
      `version ${JSON.stringify(version)} is not defined in modules.${module}.versions`,
    );
  return { module, version };
}

function readShards(
  check: ConfigCheck,
  raw: unknown,
  modules: Record<string, ModuleConfig>,
): ShardsConfig {
  const s = check.requiredObject(raw, 'shards', ['module', 'version', 'count', 'replicas']);
  const { module, version } = versionRef(check, s, 'shards', modules);
  const count = check.int(s.count, 'shards.count', 3, { min: 1, max: 1024 });
  const replicas = check.int(s.replicas, 'shards.replicas', 2, { min: 1, max: 16 });
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
  raw: unknown,
  modules: Record<string, ModuleConfig>,
): GatewayConfig['workers'] {
  const w = check.requiredObject(raw, 'workers', ['reports']);
  const r =
    raw === undefined || raw === null
      ? {}
      : check.requiredObject(w.reports, 'workers.reports', ['module', 'version', 'addresses']);
  if (r.addresses !== undefined) {
    if (r.module !== undefined)
      check.fail('workers.reports', 'give either module (and version) or addresses, not both');
    const addresses = check
      .list(r.addresses, 'workers.reports.addresses')
      .map((a, i) =>
        check.string(
          a,
          join('workers.reports.addresses', i),
          '',
          /^(tcp|ipc):\/\/\S+$/,
          'a tcp:// or ipc:// address',
        ),
      );
    if (addresses.length === 0)
      check.fail('workers.reports.addresses', 'expected at least one address');
    return { reports: { kind: 'addresses', addresses } };
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

function readResilience(check: ConfigCheck, raw: unknown): ResilienceConfig {
  const r = check.object(raw, 'resilience', ['search', 'orders', 'reports']) ?? {};
  const s =
    check.object(r.search, 'resilience.search', [
      'timeoutMs',
      'perTryTimeoutMs',
      'ejectAfterFailures',
      'ejectionMs',
      'retryBudgetPercent',
    ]) ?? {};
  const o =
    check.object(r.orders, 'resilience.orders', [
      'timeoutMs',
      'retries',
      'circuitOpenAfter',
      'circuitResetMs',
      'maxOpenPerHost',
      'expectedMs',
    ]) ?? {};
  const p =
    check.object(r.reports, 'resilience.reports', ['deadlineMs', 'jobDeadlineMs', 'jobRetries']) ??
    {};
  const ms = (value: unknown, path: string, fallback: number) =>
    check.int(value, path, fallback, { min: 1, max: DAY });
  const searchTimeout = ms(s.timeoutMs, 'resilience.search.timeoutMs', 2_000);
  return {
    search: {
      timeoutMs: searchTimeout,
      perTryTimeoutMs: ms(
        s.perTryTimeoutMs,
        'resilience.search.perTryTimeoutMs',
        Math.min(1_000, searchTimeout),
      ),
      ejectAfterFailures: check.int(
        s.ejectAfterFailures,
        'resilience.search.ejectAfterFailures',
        3,
        { min: 1, max: 1000 },
      ),
      ejectionMs: ms(s.ejectionMs, 'resilience.search.ejectionMs', 10_000),
      retryBudgetPercent: check.number(
        s.retryBudgetPercent,
        'resilience.search.retryBudgetPercent',
        20,
        { min: 0, max: 100 },
      ),
    },
    orders: {
      timeoutMs: ms(o.timeoutMs, 'resilience.orders.timeoutMs', 2_000),
      retries: check.int(o.retries, 'resilience.orders.retries', 2, { min: 0, max: 10 }),
      circuitOpenAfter: check.int(o.circuitOpenAfter, 'resilience.orders.circuitOpenAfter', 5, {
        min: 1,
        max: 1000,
      }),
      circuitResetMs: ms(o.circuitResetMs, 'resilience.orders.circuitResetMs', 5_000),
      maxOpenPerHost: check.int(o.maxOpenPerHost, 'resilience.orders.maxOpenPerHost', 50, {
        min: 1,
        max: 100_000,
      }),
      expectedMs: ms(o.expectedMs, 'resilience.orders.expectedMs', 250),
    },
    reports: {
      deadlineMs: ms(p.deadlineMs, 'resilience.reports.deadlineMs', 3_000),
      jobDeadlineMs: ms(p.jobDeadlineMs, 'resilience.reports.jobDeadlineMs', 30_000),
      jobRetries: check.int(p.jobRetries, 'resilience.reports.jobRetries', 2, { min: 0, max: 100 }),
    },
  };
}
