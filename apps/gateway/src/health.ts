import type { Dispatcher } from '@x/dispatcher';
import type { CatalogShards } from './catalogShards.js';
import type { GatewayConfig } from './config.js';
import type { ReportsClient } from './reportsClient.js';

/** One readiness check. */
export interface Check {
  readonly ok: boolean;
  readonly detail: string;
}

/** The parts readiness looks at. */
export interface HealthSources {
  readonly config: GatewayConfig;
  readonly dispatcher: Dispatcher;
  readonly catalog: CatalogShards;
  readonly reports: ReportsClient;
  readonly isDraining: () => boolean;
  /** Redis, when the gateway was configured with it (`REDIS_URL`). */
  readonly redis?: { check(): Check } | undefined;
}

/**
 * `/readyz`: ready when not draining, every shard key has a ready catalog replica, every version
 * the orders split sends traffic to has a ready instance, a reports worker is connected, and (when
 * configured) Redis answers its periodic PING.
 * (`/healthz` only says the process serves HTTP.)
 */
export function readiness(s: HealthSources): { ready: boolean; checks: Record<string, Check> } {
  const checks: Record<string, Check> = {};
  checks.draining = s.isDraining()
    ? { ok: false, detail: 'the gateway is shutting down' }
    : { ok: true, detail: 'accepting traffic' };
  const { shards } = s.config;
  const ready = s.dispatcher
    .getInstances(shards.module, shards.version)
    .filter(i => i.state === 'ready')
    .map(i => Number(i.id));
  const hosts = s.catalog.snapshot().filter(h => ready.includes(Number(h.instance)));
  const missing = s.catalog.keys().filter(k => !hosts.some(h => h.shards.includes(k)));
  checks.catalog =
    missing.length === 0
      ? { ok: true, detail: `${hosts.length} ready instance(s) cover ${shards.count} shard keys` }
      : { ok: false, detail: `shard keys without a ready replica: ${missing.join(', ')}` };
  for (const split of s.config.splits) {
    const empty = Object.entries(split.weights)
      .filter(([, w]) => w > 0)
      .map(([version]) => version)
      .filter(v => !s.dispatcher.getInstances(split.module, v).some(i => i.state === 'ready'));
    checks[`split:${split.module}`] =
      empty.length === 0
        ? { ok: true, detail: 'every weighted version has a ready instance' }
        : {
            ok: false,
            detail: `no ready instance in ${empty.map(v => `${split.module}/${v}`).join(', ')}`,
          };
  }
  if (s.redis) checks.redis = s.redis.check();
  const up = s.reports.connection.endpoints().filter(e => e.state === 'up').length;
  checks.reports =
    up > 0
      ? { ok: true, detail: `${up} worker endpoint(s) up` }
      : { ok: false, detail: 'no reports worker is up' };
  return { ready: Object.values(checks).every(c => c.ok), checks };
}
