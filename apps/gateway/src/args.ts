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

Environment: REDIS_URL (durable events + BullMQ queue), GATEWAY_ADMIN_TOKEN, LOG_LEVEL.`;

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
  let port: number | undefined;
  if (values.port !== undefined) {
    port = Number(values.port);
    if (!/^\d{1,5}$/.test(values.port) || port > 65535)
      throw new Error(
        `--port: expected an integer from 0 to 65535, got ${JSON.stringify(values.port)}`,
      );
  }
  if (values.host !== undefined && values.host.trim() === '')
    throw new Error('--host: expected an address');
  return { config: values.config, port, host: values.host, help: values.help ?? false };
}
