#!/usr/bin/env node
/**
 * `node apps/gateway/dist/cli.js [--config path] [--port N] [--host H]`: reads and validates
 * the configuration (exit code 2 with every bad field named), starts the gateway, prints its
 * URLs and admin token, and drains on SIGINT / SIGTERM (a second signal exits at once).
 */
import { randomBytes } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { listenSettings, parseCli, USAGE, type CliArgs } from './args.js';
import { loadConfig, type GatewayConfig, type LogLevel } from './config.js';
import { ConfigError } from './configError.js';
import { startGateway, type Gateway } from './gateway.js';
import { defaultReplicaId } from './replicaFleet.js';
import { TraceStore } from './traceStore.js';
import { TraceStoreProcessor } from './traceStoreProcessor.js';
import { startTracing, type Tracing } from './tracing.js';

const here = dirname(fileURLToPath(import.meta.url));
const APP_DIR = resolve(here, '..');
const BACKENDS_DIR = resolve(here, 'backends');
const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function fail(message: string, code: number): never {
  process.stderr.write(`x-gateway: ${message}\n`);
  process.exit(code);
}

function settings(config: GatewayConfig, env: NodeJS.ProcessEnv) {
  const token =
    config.admin.token ?? env.GATEWAY_ADMIN_TOKEN ?? randomBytes(18).toString('base64url');
  if (token.length < 16) fail('GATEWAY_ADMIN_TOKEN: expected a token of at least 16 characters', 2);
  const redisUrl = config.redis.url ?? (env.REDIS_URL || undefined);
  if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl))
    fail(`REDIS_URL: expected a redis:// or rediss:// URL, got ${JSON.stringify(redisUrl)}`, 2);
  const logLevel = env.LOG_LEVEL as LogLevel | undefined;
  if (logLevel !== undefined && !LEVELS.includes(logLevel))
    fail(`LOG_LEVEL: expected one of ${LEVELS.join(', ')}, got ${JSON.stringify(logLevel)}`, 2);
  return { adminToken: token, redisUrl, ...(logLevel ? { logLevel } : {}) };
}

function banner(gateway: Gateway, config: GatewayConfig): string {
  const mode =
    gateway.mode === 'redis'
      ? `redis mode (${gateway.redis}: durable events, BullMQ report queue)`
      : 'memory mode (set REDIS_URL for durable events and the BullMQ report queue)';
  return [
    '',
    `  x-gateway · ${mode}`,
    `  config       ${config.file}`,
    `  replica      ${gateway.replica}`,
    `  gateway      ${gateway.url}`,
    `  dashboard    ${gateway.dashboardUrl}`,
    `  metrics      ${gateway.metricsUrl}`,
    ...(gateway.frontDoorUrl
      ? [`  front door   ${gateway.frontDoorUrl} (the dispatcher's own loopback listener)`]
      : []),
    `  admin token  ${gateway.adminToken}`,
    `  try          curl '${gateway.url}api/search?q=lamp'`,
    '',
    `gateway ready at ${gateway.url} (Ctrl-C to stop)`,
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  let args: CliArgs;
  try {
    args = parseCli(process.argv.slice(2));
  } catch (error) {
    fail(`${(error as Error).message}\n\n${USAGE}`, 2);
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const file = resolve(args.config ?? resolve(APP_DIR, 'gateway.config.yaml'));
  let config: GatewayConfig;
  try {
    config = loadConfig(file, BACKENDS_DIR);
  } catch (error) {
    if (error instanceof ConfigError) fail(error.message, 2);
    throw error;
  }

  let listen: ReturnType<typeof listenSettings>;
  try {
    listen = listenSettings(args, process.env);
  } catch (error) {
    fail((error as Error).message, 2);
  }
  // one configuration file for every replica: the id can come from the environment
  const replicaId = process.env.GATEWAY_REPLICA_ID?.trim();
  if (replicaId) {
    if (!/^[A-Za-z0-9._:-]{1,100}$/.test(replicaId))
      fail(
        `GATEWAY_REPLICA_ID: expected letters, digits, ., _, : or - (at most 100), got ${JSON.stringify(replicaId)}`,
        2,
      );
    config = { ...config, replicas: { ...config.replicas, id: replicaId } };
  }

  // OTEL_EXPORTER_OTLP_ENDPOINT set: spans go to it (see docs/CONTEXT.md); unset: nothing is
  // exported. tracing.dashboardTraces > 0 (the default): the last traces also go to the dashboard.
  const store = config.tracing.dashboardTraces > 0 ? new TraceStore(config.tracing) : undefined;
  const tracing: Tracing | undefined = startTracing(
    process.env,
    'x-gateway',
    undefined,
    store
      ? {
          spanProcessors: [new TraceStoreProcessor(store)],
          sampleRatio: config.tracing.sampleRatio,
          resource: { 'service.instance.id': config.replicas.id ?? defaultReplicaId() },
        }
      : {},
  );
  let gateway: Gateway | undefined;
  let signalled: NodeJS.Signals | undefined;
  const stop = (signal: NodeJS.Signals) => {
    if (signalled) {
      process.stderr.write(`x-gateway: ${signal} again, exiting now\n`);
      process.exit(130);
    }
    signalled = signal;
    if (!gateway) return; // still starting: stop right after
    process.stderr.write(`x-gateway: ${signal}, draining…\n`);
    gateway.stop().then(
      async ({ durationMs }) => {
        await tracing?.shutdown().catch(() => {}); // flush the last spans
        process.stderr.write(`x-gateway: stopped in ${durationMs} ms\n`);
        process.exit(0);
      },
      error => fail(`error while stopping: ${(error as Error)?.message ?? String(error)}`, 1),
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);

  try {
    gateway = await startGateway(config, {
      ...settings(config, process.env),
      ...listen,
      ...(store && tracing ? { traceStore: store } : {}),
    });
  } catch (error) {
    fail(`could not start: ${(error as Error)?.message ?? String(error)}`, 1);
  }
  process.stdout.write(banner(gateway, config));
  if (signalled) {
    const signal = signalled;
    signalled = undefined;
    stop(signal);
  }
}

main().catch(error => fail(`unexpected error: ${(error as Error)?.stack ?? String(error)}`, 1));
