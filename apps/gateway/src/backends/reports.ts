/**
 * Demo `reports` worker: a `@x/worker-rpc` worker bound to `tcp://127.0.0.1:$PORT` (ZeroMQ),
 * started and restarted by the dispatcher like any instance. `reports.generate` works in small
 * steps and stops as soon as its call is cancelled (the client went away) or its deadline passes;
 * `reports.stats` counts both.
 */
import { createWorker, zmqWorkerTransport, type HandlerContext } from '@x/worker-rpc';
import { instanceEnv, onShutdown, sleep } from '../backendRuntime.js';
import type { Report, ReportRequest, ReportsApi, ReportStats } from '../reportsApi.js';

const env = instanceEnv(8301);
const stats = { running: 0, generated: 0, cancelled: 0, timedOut: 0 };

async function generate(params: ReportRequest, ctx: HandlerContext): Promise<Report> {
  const started = Date.now();
  const rows = params.rows ?? 12;
  const workMs = params.delayMs ?? 40 + rows * 2;
  stats.running++;
  try {
    for (let done = 0; done < workMs; done += 20) {
      if (ctx.signal.aborted) {
        if (ctx.remainingMs() <= 0) stats.timedOut++;
        else stats.cancelled++;
        throw ctx.signal.reason ?? new Error('cancelled');
      }
      await sleep(Math.min(20, workMs - done));
    }
    const data = Array.from({ length: rows }, (_, i) => ({
      label: `${params.kind} ${String(i + 1).padStart(2, '0')}`,
      value: ((i + 7) * 7919 + params.kind.length * 104729) % 1000,
    }));
    stats.generated++;
    return {
      kind: params.kind,
      rows: data,
      total: data.reduce((sum, row) => sum + row.value, 0),
      worker: { instance: env.instance, pid: process.pid },
      tookMs: Date.now() - started,
    };
  } finally {
    stats.running--;
  }
}

const worker = await createWorker<ReportsApi>({
  transport: zmqWorkerTransport({ bind: `tcp://127.0.0.1:${env.port}` }),
  handlers: {
    reports: {
      generate,
      stats: (): ReportStats => ({ instance: env.instance, pid: process.pid, ...stats }),
    },
  },
  concurrency: 32,
  queue: 128,
  // $status / $drain only with the gateway's admin token (anything on the host reaches this port).
  admin: process.env.X_ADMIN_TOKEN ? { token: process.env.X_ADMIN_TOKEN } : false,
}).start();

onShutdown(env, () => worker.close());
