import { Type, type Static, type TLiteral, type TSchema } from '@sinclair/typebox';
import { DispatchRuleSchema, MODULE_NAME_PATTERN } from '@x/dispatcher';

// The shape of gateway.config.yaml as TypeBox schemas: the single source of the runtime check
// (configSchemaIssues.ts), the defaults and the published JSON Schema
// (schema/gateway.config.schema.json, written by scripts/writeSchema.mjs). Two annotations are
// for our error messages only and are left out of the JSON Schema: `expected` (what a bad value
// should have been, e.g. "a redis:// or rediss:// URL") and `itemName` (what a list or mapping
// holds, for "define at least one module" and "module names must be …").

const DAY = 86_400_000;
const GIB = 1024 * 1024 * 1024;
const LABEL_HINT = 'a lowercase host-name label (a-z, 0-9, -)';

/** An integer in `[minimum, maximum]`, optional with `default` when given. */
function int(minimum: number, maximum: number, description: string, fallback?: number) {
  return Type.Optional(
    Type.Integer({
      minimum,
      maximum,
      description,
      ...(fallback === undefined ? {} : { default: fallback }),
    }),
  );
}

/** Milliseconds, 1 ms to a day. */
const ms = (description: string, fallback?: number) => int(1, DAY, description, fallback);

/** A non-empty string matching `pattern`; `expected` names it in errors. */
function text(
  pattern: string | undefined,
  expected: string | undefined,
  description: string,
  fallback?: string,
) {
  return Type.String({
    minLength: 1,
    description,
    ...(pattern === undefined ? {} : { pattern }),
    ...(expected === undefined ? {} : { expected }),
    ...(fallback === undefined ? {} : { default: fallback }),
  });
}

/** A mapping with exactly these keys, all optional unless required, `{}` when absent. */
function section<P extends Record<string, TSchema>>(properties: P, description: string) {
  return Type.Object(properties, { additionalProperties: false, default: {}, description });
}

/** `value` or `null` (YAML's empty value), e.g. `token: null`. */
function nullable<T extends TSchema>(schema: T, description: string) {
  return Type.Optional(Type.Union([schema, Type.Null()], { description }));
}

/** One of a few strings. */
function oneOf<T extends TLiteral<string>[]>(
  literals: [...T],
  description: string,
  fallback: T[number]['const'],
) {
  return Type.Optional(Type.Union(literals, { description, default: fallback }));
}

const L = <V extends string>(value: V) => Type.Literal(value);

/** Names of modules and versions. */
function labelRecord<T extends TSchema>(value: T, itemName: string, description: string) {
  return Type.Record(Type.String({ pattern: MODULE_NAME_PATTERN }), value, {
    additionalProperties: false,
    minProperties: 1,
    itemName,
    expectedKey: LABEL_HINT,
    description,
  });
}

const ServerSchema = section(
  {
    host: Type.Optional(text(undefined, undefined, 'Listen address.', '127.0.0.1')),
    port: int(0, 65535, 'Listen port (0: any free port). Default 8080.', 8080),
    drainTimeoutMs: int(0, DAY, 'Ctrl-C: how long requests in flight may finish.', 10_000),
    headersTimeoutMs: ms(
      'Slow clients: the request head must arrive within this time, else 408. At most requestTimeoutMs.',
      10_000,
    ),
    requestTimeoutMs: ms(
      'Slow clients: the whole request must arrive within this time, else 408.',
      30_000,
    ),
    maxBodyBytes: int(1, GIB, 'Largest request body; a bigger one is a 413.', 32 * 1024 * 1024),
    maxRequestBudgetMs: ms(
      'Largest budget a client may give in x-request-timeout-ms. Default: dispatcher.requestTimeoutMs.',
    ),
    maxPipelinedRequests: int(
      1,
      1024,
      'Requests of one connection served at a time (HTTP/1.1 pipelining); later ones wait. More than 16 times as many waiting, or a full connection whose answers make no progress for requestTimeoutMs (a client that reads nothing), closes the connection.',
      8,
    ),
  },
  'The gateway’s HTTP listener.',
);

const AdminSchema = section(
  {
    token: nullable(
      Type.String({ minLength: 16, expected: 'a token of at least 16 characters' }),
      'Bearer token of the admin API, at least 16 characters. null: $GATEWAY_ADMIN_TOKEN or a random token printed at start.',
    ),
    maxFailures: int(1, 1_000_000, 'Wrong admin tokens per client before 429.', 10),
    failureWindowMs: ms('Window of maxFailures.', 60_000),
  },
  'The admin API (/_x/admin/…) and its lockout.',
);

const DashboardSchema = section(
  {
    maxStreams: int(0, 100_000, 'Most open /_x/events streams; more get 503.', 256),
    maxBufferedBytes: int(1024, GIB, 'A stream with more unsent bytes is closed.', 1024 * 1024),
    stallTimeoutMs: ms('A stream whose client reads nothing for this long is closed.', 30_000),
    requireToken: Type.Optional(
      Type.Boolean({ default: false, description: '/_x/ needs the admin token.' }),
    ),
  },
  'The live dashboard (/_x/).',
);

const TracingSchema = section(
  {
    dashboardTraces: int(
      0,
      1_000,
      "Traces kept per endpoint for the dashboard's waterfall (spans of the gateway and of its instances). 0 (default): off, nothing traced for the dashboard. On, the OpenTelemetry SDK runs in the gateway and its instances: it cost 35-45 % of /api/search's throughput on 2 cores, sampled or not.",
      0,
    ),
    sampleRatio: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: 1,
        default: 1,
        description:
          'Share of requests traced when dashboardTraces > 0 (a caller traceparent that is sampled is always followed; OTEL_TRACES_SAMPLER overrides).',
      }),
    ),
    maxSpansPerTrace: int(1, 100_000, 'Spans kept per trace; more are counted as dropped.', 500),
    maxSpans: int(1, 10_000_000, 'Spans kept in all; the oldest traces go first.', 20_000),
  },
  "Traces for the dashboard's waterfall (/_x/traces).",
);

const LEVELS = [L('fatal'), L('error'), L('warn'), L('info'), L('debug'), L('trace'), L('silent')];

const LoggingSchema = section(
  { level: oneOf(LEVELS, 'pino log level ($LOG_LEVEL overrides).', 'info') },
  'Logging.',
);

const DispatcherSchema = section(
  {
    host: Type.Optional(
      Type.String({
        minLength: 1,
        pattern: '^[a-z0-9.-]+$',
        expected: 'a lowercase host name',
        default: 'localhost',
        description: 'Modules answer at [instance.][version.]module.<host>.',
      }),
    ),
    listen: Type.Optional(
      Type.Boolean({
        default: false,
        description:
          'Also serve the front door on its own loopback port, for local tools and processes (the gateway itself reaches the instances in process).',
      }),
    ),
    port: int(0, 65535, 'Loopback port of that listener (0: any free port).', 0),
    defaultModule: nullable(
      Type.String({ minLength: 1 }),
      'The module of requests no dispatch rule claims.',
    ),
    requestTimeoutMs: ms('The gateway’s request deadline.', 10_000),
  },
  '@x/dispatcher: modules, versions and instances behind the gateway.',
);

const HealthCheckSchema = Type.Object(
  {
    path: Type.Optional(
      Type.String({
        pattern: '^/\\S*$',
        expected: 'a path starting with /',
        default: '/_ah/health',
        description: 'GET path probed.',
      }),
    ),
    intervalMs: int(10, DAY, 'Probe interval.', 1_000),
    timeoutMs: int(10, DAY, 'Probe timeout.', 1_000),
    unhealthyThreshold: int(1, 1000, 'Failed probes before leaving rotation.', 2),
    healthyThreshold: int(1, 1000, 'Passing probes before taking traffic again.', 2),
    restartThreshold: int(1, 1000, 'Failed probes before a restart.', 10),
    ejectAfterTimeouts: int(1, 1000, 'Requests in a row past their deadline before ejection.', 3),
  },
  { additionalProperties: false, default: {} },
);

const BackendSchema = Type.Object(
  {
    script: Type.Optional(
      text(
        undefined,
        undefined,
        'A built demo backend (catalog, orders, reports) or a .js path relative to this file.',
      ),
    ),
    command: Type.Optional(text(undefined, undefined, 'A program, run once per instance.')),
    args: Type.Optional(
      Type.Array(Type.Union([Type.String(), Type.Number()], { expected: 'a string' }), {
        description: 'Arguments of script or command.',
      }),
    ),
    protocol: oneOf([L('http'), L('zmq')], 'zmq: ZeroMQ workers (no HTTP lifecycle).', 'http'),
    remote: Type.Optional(
      Type.Array(text('^https?://[^/\\s]+/?$', 'an http(s)://host:port URL', 'An instance URL.'), {
        minItems: 1,
        itemName: 'URL',
        description: 'Instances that run elsewhere: instance i is remote[i].',
      }),
    ),
    builtin: Type.Optional(
      Type.Literal('welcome', { description: 'A handler inside the gateway process.' }),
    ),
  },
  {
    additionalProperties: false,
    description: 'Exactly one of script, command, remote or builtin.',
    oneOf: ['script', 'command', 'remote', 'builtin'].map(k => ({ required: [k] })),
  },
);

const VersionSchema = Type.Object(
  {
    backend: BackendSchema,
    instances: int(1, 64, 'Instances started at once (manual scaling).', 1),
    maxConcurrentRequests: int(1, 100_000, 'Requests in flight per instance.', 100),
    env: Type.Optional(
      Type.Record(
        Type.String(),
        Type.Union([Type.String(), Type.Number(), Type.Boolean()], { expected: 'a string' }),
        { default: {}, description: 'Extra environment of the child processes.' },
      ),
    ),
    restart: Type.Optional(
      Type.Object(
        {
          initialDelayMs: ms('First restart delay.', 100),
          maxDelayMs: ms(
            'Longest restart delay, at least initialDelayMs. Default max(30000, initialDelayMs).',
          ),
          maxRestarts: int(0, 1000, 'Restarts before giving up.', 10),
        },
        { additionalProperties: false, default: {}, description: 'How a dead instance restarts.' },
      ),
    ),
    healthCheck: Type.Optional(
      Type.Union([HealthCheckSchema, Type.Literal(false)], {
        description: 'Active health checks of HTTP instances; false: off.',
      }),
    ),
  },
  { additionalProperties: false, default: {} },
);

const ModuleSchema = Type.Object(
  {
    defaultVersion: nullable(
      Type.String({ minLength: 1 }),
      'The version that takes traffic. Default: the first.',
    ),
    versions: labelRecord(VersionSchema, 'version', 'The versions of the module.'),
  },
  { additionalProperties: false, default: {} },
);

const SplitSchema = Type.Object(
  {
    module: Type.String({ minLength: 1, description: 'The module split.' }),
    weights: Type.Record(Type.String(), Type.Number({ minimum: 0 }), {
      description: 'Weight per version; at least one > 0.',
    }),
    stickyBy: oneOf(
      [L('cookie'), L('ip'), L('random')],
      'What keeps a client on a version.',
      'cookie',
    ),
  },
  { additionalProperties: false },
);

const ShardsSchema = Type.Object(
  {
    module: Type.String({ minLength: 1, description: 'The module holding the shards.' }),
    version: Type.Optional(
      Type.String({ minLength: 1, description: 'Default: the module’s default version.' }),
    ),
    count: int(1, 1024, 'Shard keys 0…count-1.', 3),
    replicas: int(1, 16, 'Instances holding each key; at most count.', 2),
  },
  {
    additionalProperties: false,
    description: '/api/search fans out over the child-process instances of one version.',
  },
);

const WorkersSchema = Type.Object(
  {
    reports: Type.Object(
      {
        module: Type.Optional(Type.String({ minLength: 1, description: 'A zmq module.' })),
        version: Type.Optional(Type.String({ minLength: 1, description: 'Its version.' })),
        addresses: Type.Optional(
          Type.Array(text('^(tcp|ipc)://\\S+$', 'a tcp:// or ipc:// address', 'A worker.'), {
            minItems: 1,
            itemName: 'address',
            description: 'Fixed worker addresses instead of a module.',
          }),
        ),
      },
      {
        additionalProperties: false,
        description: 'The instances of a dispatcher version, or fixed addresses.',
      },
    ),
  },
  { additionalProperties: false, description: 'Worker endpoints of /api/reports.' },
);

const ResilienceSchema = section(
  {
    search: section(
      {
        timeoutMs: ms('Whole multicast, re-covers included.', 2_000),
        perTryTimeoutMs: ms('Per try. Default min(1000, timeoutMs).'),
        ejectAfterFailures: int(1, 1000, 'Consecutive failures before ejection.', 3),
        ejectionMs: ms('How long an ejected host stays out.', 10_000),
        retryBudgetPercent: Type.Optional(
          Type.Number({ minimum: 0, maximum: 100, default: 20, description: 'Retry budget.' }),
        ),
      },
      '@x/rest-client Shards.',
    ),
    orders: section(
      {
        timeoutMs: ms('Per call.', 2_000),
        retries: int(0, 10, 'Retries.', 2),
        circuitOpenAfter: int(1, 1000, 'Consecutive failures before the circuit opens.', 5),
        circuitResetMs: ms('Half-open after.', 5_000),
        maxOpenPerHost: int(1, 100_000, 'Connections per host.', 50),
        expectedMs: ms('Slower calls count as degraded.', 250),
      },
      '@x/resilience faultTolerant.',
    ),
    reports: section(
      {
        deadlineMs: ms('POST /api/reports.', 3_000),
        jobDeadlineMs: ms('Queued report jobs.', 30_000),
        jobRetries: int(0, 100, 'Retries of a job.', 2),
      },
      '@x/worker-rpc.',
    ),
  },
  'Timeouts, retries and breakers of the demo routes.',
);

const RedisSchema = section(
  {
    url: nullable(
      Type.String({ pattern: '^rediss?://', expected: 'a redis:// or rediss:// URL' }),
      'Default $REDIS_URL: durable dispatcher events and the BullMQ report queue.',
    ),
    prefix: Type.Optional(
      Type.String({
        minLength: 1,
        pattern: '^[A-Za-z0-9:_-]+$',
        expected: 'letters, digits, :, _ or -',
        default: 'x-gateway',
        description: 'Key prefix.',
      }),
    ),
  },
  'Redis.',
);

const ReplicasSchema = section(
  {
    id: nullable(
      Type.String({
        pattern: '^[A-Za-z0-9._:-]{1,100}$',
        expected: 'letters, digits, ., _, : or - (at most 100)',
      }),
      'This replica’s id (X-Replica, the fleet view). Default $GATEWAY_REPLICA_ID, else hostname:pid.',
    ),
    publishIntervalMs: int(
      100,
      60_000,
      'How often this replica publishes its state for the fleet view (with REDIS_URL).',
      1_000,
    ),
    staleAfterMs: int(
      200,
      600_000,
      'A replica not heard of for this long is shown as gone. At least 2 × publishIntervalMs.',
      5_000,
    ),
    eventTakeoverMs: int(
      100,
      DAY,
      'An event still pending this long after its due time (its replica died) is run by another replica.',
      3_000,
    ),
  },
  'Several gateways behind a load balancer on one Redis (docs/SCALING.md).',
);

/** One fixed-window limit: `points` requests per `durationMs` (whole seconds). */
function windowLimit(description: string) {
  return nullable(
    Type.Object(
      {
        points: Type.Integer({
          minimum: 1,
          maximum: 1_000_000_000,
          expected: 'an integer from 1 to 1000000000',
          description: 'Requests allowed per window.',
        }),
        durationMs: Type.Integer({
          minimum: 1_000,
          maximum: DAY,
          multipleOf: 1_000,
          expected: 'whole seconds in ms (1000, 2000, …) up to a day',
          description: 'The window.',
        }),
      },
      { additionalProperties: false },
    ),
    description,
  );
}

const RateLimitSchema = section(
  {
    perClient: windowLimit(
      'Requests per client address per window; beyond it 429 RATE_LIMITED with Retry-After. Default: none.',
    ),
    global: windowLimit(
      'Requests per window for the whole gateway (with REDIS_URL: for the whole fleet). Default: none.',
    ),
    clientAddressHeader: nullable(
      Type.String({
        pattern: '^[a-z0-9-]+$',
        expected: 'a lowercase header name',
      }),
      'Behind a load balancer: the header it sets with the client address (e.g. x-forwarded-for; its first value). Default: the peer address.',
    ),
  },
  'Edge rate limits of API and front-door requests (shared by the replicas through Redis when REDIS_URL is set).',
);

/** `gateway.config.yaml` as written: every section and field, with defaults and ranges. */
export const GatewayConfigFileSchema = Type.Object(
  {
    server: Type.Optional(ServerSchema),
    admin: Type.Optional(AdminSchema),
    dashboard: Type.Optional(DashboardSchema),
    tracing: Type.Optional(TracingSchema),
    logging: Type.Optional(LoggingSchema),
    dispatcher: Type.Optional(DispatcherSchema),
    modules: labelRecord(ModuleSchema, 'module', 'Modules, their versions and instances.'),
    dispatch: Type.Optional(
      Type.Array(DispatchRuleSchema, {
        default: [],
        description: 'Dispatch rules (dispatch.yaml semantics): first match wins.',
      }),
    ),
    splits: Type.Optional(
      Type.Array(SplitSchema, {
        default: [],
        description: 'Traffic splits between the versions of a module.',
      }),
    ),
    shards: ShardsSchema,
    workers: WorkersSchema,
    resilience: Type.Optional(ResilienceSchema),
    redis: Type.Optional(RedisSchema),
    replicas: Type.Optional(ReplicasSchema),
    rateLimit: Type.Optional(RateLimitSchema),
  },
  {
    additionalProperties: false,
    title: 'gateway.config.yaml (x-gateway)',
    description: 'The x-gateway configuration. Times are milliseconds.',
  },
);

/** `gateway.config.yaml` as written (before defaults and cross-field checks). */
export type GatewayConfigFile = Static<typeof GatewayConfigFileSchema>;

/** Where the JSON Schema of `gateway.config.yaml` lives (its `$id`). */
export const GATEWAY_CONFIG_SCHEMA_ID =
  'https://raw.githubusercontent.com/x-toolkit/x/main/apps/gateway/schema/gateway.config.schema.json';

const MESSAGE_ONLY = new Set(['expected', 'expectedKey', 'itemName']);

/**
 * The JSON Schema (draft-07) of `gateway.config.yaml`, generated from
 * {@link GatewayConfigFileSchema} without the message-only annotations.
 */
export function gatewayConfigJsonSchema(): Record<string, unknown> {
  const json = JSON.stringify(GatewayConfigFileSchema, function (key, value: unknown) {
    const holder = this as Record<string, unknown>;
    const isSchema = 'type' in holder || 'anyOf' in holder || 'const' in holder;
    return isSchema && MESSAGE_ONLY.has(key) ? undefined : value;
  });
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: GATEWAY_CONFIG_SCHEMA_ID,
    ...(JSON.parse(json) as Record<string, unknown>),
  };
}
