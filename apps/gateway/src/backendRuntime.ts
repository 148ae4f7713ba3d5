import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { sendJson } from './sendJson.js';
import { serverSpan, startTracing, type Tracing } from './tracing.js';

/** What the dispatcher tells a child-process instance through its environment. */
export interface InstanceEnv {
  readonly port: number;
  readonly module: string;
  readonly version: string;
  readonly instance: string;
  /** True when started by `@x/dispatcher` (then SIGINT is left to the gateway). */
  readonly managed: boolean;
}

/** Reads `PORT`, `X_MODULE`, `X_VERSION`, `X_INSTANCE` (set by `@x/dispatcher`'s `childProcess()`). */
export function instanceEnv(defaultPort: number): InstanceEnv {
  return {
    port: Number(process.env.PORT ?? defaultPort),
    module: process.env.X_MODULE ?? 'standalone',
    version: process.env.X_VERSION ?? 'v1',
    instance: process.env.X_INSTANCE ?? '0',
    managed: process.env.X_MODULE !== undefined,
  };
}

/**
 * Stops the process cleanly: `stop()` runs once on SIGTERM (what the dispatcher sends), or on
 * SIGINT when run by hand. Under the dispatcher, Ctrl-C in the terminal also reaches the
 * children; they ignore it and let the gateway drain and stop them in order. If the parent
 * disappears (killed with SIGKILL), the instance exits by itself instead of becoming an orphan.
 */
export function onShutdown(env: InstanceEnv, stop: () => Promise<void>): void {
  let stopping = false;
  const tracing = backendTracing(env);
  const run = () => {
    if (stopping) return;
    stopping = true;
    const force = setTimeout(() => process.exit(0), 5_000);
    force.unref();
    const flushed = () => tracing?.shutdown().catch(() => {});
    stop().then(
      () => Promise.resolve(flushed()).then(() => process.exit(0)),
      () => Promise.resolve(flushed()).then(() => process.exit(1)),
    );
  };
  process.on('SIGTERM', run);
  process.on('SIGINT', env.managed ? () => {} : run);
  if (env.managed) {
    const parent = process.ppid;
    // a gateway that died while this process was still loading (a busy machine) made it an
    // orphan before `parent` was read: its pid (`X_GATEWAY_PID`) is gone too
    const gateway = Number(process.env.X_GATEWAY_PID) || undefined;
    const watch = setInterval(() => {
      if (process.ppid !== parent || (gateway !== undefined && !alive(gateway))) run();
    }, 500);
    watch.unref();
  }
}

/**
 * An HTTP instance on `env.port` (127.0.0.1) that answers App Engine's lifecycle requests
 * (`/_ah/start`, `/_ah/stop`, `/_ah/health`) and hands everything else to `handler`.
 */
export function serveHttp(
  env: InstanceEnv,
  handler: (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>,
): Server {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://instance');
    if (url.pathname.startsWith('/_ah/')) {
      sendJson(res, 200, { ok: true, instance: env.instance });
      return;
    }
    const span = serverSpan(req, res, url.pathname, url.pathname);
    const run = () => handler(req, res, url);
    Promise.resolve(span ? span.run(run) : run()).catch(error => {
      if (!res.headersSent)
        sendJson(res, 500, { error: { code: 'INTERNAL', message: String(error) } });
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5_000;
  server.listen(env.port, '127.0.0.1');
  onShutdown(
    env,
    () =>
      new Promise<void>(resolve => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  );
  return server;
}

let started: Tracing | undefined | null = null;

/**
 * The instance's OpenTelemetry SDK, started once, as service `x-<module>` with
 * `service.instance.id` `<module>.<version>.<instance>` (the gateway's `OTEL_SERVICE_NAME` names
 * the gateway only). Its spans go to the gateway's trace store when the gateway gave it
 * `X_TRACES_URL` (OTLP http/json with the admin token of `X_ADMIN_TOKEN`, flushed every 200 ms so
 * the dashboard's waterfall fills in quickly), and to the user's collector when it inherited
 * `OTEL_EXPORTER_OTLP_ENDPOINT`; undefined when neither is set.
 */
export function backendTracing(env: InstanceEnv): Tracing | undefined {
  if (started !== null) return started;
  const url = process.env.X_TRACES_URL;
  const toGateway = url
    ? [
        new BatchSpanProcessor(
          new OTLPTraceExporter({
            url,
            headers: { authorization: `Bearer ${process.env.X_ADMIN_TOKEN ?? ''}` },
          }),
          { scheduledDelayMillis: 200, maxExportBatchSize: 512, maxQueueSize: 4096 },
        ),
      ]
    : [];
  started = startTracing(
    { ...process.env, OTEL_SERVICE_NAME: undefined },
    `x-${env.module}`,
    undefined,
    {
      spanProcessors: toGateway,
      resource: { 'service.instance.id': `${env.module}.${env.version}.${env.instance}` },
    },
  );
  return started;
}

/** True while a process with this pid exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Waits `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms));
}
