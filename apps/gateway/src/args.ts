import { parseArgs } from 'node:util';

/** The command line: `x-gateway [--config path] [--port N] [--host H]`. */
export interface CliArgs {
  readonly config: string | undefined;
  readonly port: number | undefined;
  readonly host: string | undefined;
  readonly help: boolean;
}

export const USAGE = `Usage: node apps/gateway/dist/cli.js [--config path] [--port N] [--host H]

  --config, -c  configuration file (default: gateway.config.yaml next to the app)
  --port, -p    listen port (overrides server.port; 0 picks a free one)
  --host        listen address (overrides server.host)
  --help, -h    this text

Environment: PORT and HOST (the listen port and address, below --port / --host, above the
configuration file), REDIS_URL (durable events + BullMQ queue), GATEWAY_ADMIN_TOKEN, LOG_LEVEL,
GATEWAY_REPLICA_ID (this replica's id in a fleet, over replicas.id; default hostname:pid).`;

/**
 * Where to listen, as platforms expect: a `--port` / `--host` flag wins, else `$PORT` / `$HOST`,
 * else the configuration file (undefined here). Throws on a malformed `$PORT`.
 */
export function listenSettings(
  args: Pick<CliArgs, 'port' | 'host'>,
  env: NodeJS.ProcessEnv,
): { port?: number; host?: string } {
  const out: { port?: number; host?: string } = {};
  if (args.port !== undefined) out.port = args.port;
  else if (env.PORT !== undefined && env.PORT !== '') out.port = parsePort('PORT', env.PORT);
  if (args.host !== undefined) out.host = args.host;
  else if (env.HOST !== undefined && env.HOST.trim() !== '') out.host = env.HOST.trim();
  return out;
}

function parsePort(name: string, value: string): number {
  const port = Number(value);
  if (!/^\d{1,5}$/.test(value) || port > 65535)
    throw new Error(`${name}: expected an integer from 0 to 65535, got ${JSON.stringify(value)}`);
  return port;
}

/** Parses the arguments; throws an Error with a clear message on bad ones. */
export function parseCli(argv: readonly string[]): CliArgs {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      config: { type: 'string', short: 'c' },
      port: { type: 'string', short: 'p' },
      host: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
  const port = values.port === undefined ? undefined : parsePort('--port', values.port);
  if (values.host !== undefined && values.host.trim() === '')
    throw new Error('--host: expected an address');
  return { config: values.config, port, host: values.host, help: values.help ?? false };
}
