import promClient from 'prom-client';
import { prometheusMetrics, type Metrics } from '@x/resilience';

/** The gateway's Prometheus registry and the `Metrics` sink every `@x` package records into. */
export interface GatewayMetrics {
  /** Pass this to `@x` packages (`metrics` option): names like `x_resilience_calls_total`. */
  readonly sink: Metrics;
  /** The text exposition for `GET /metrics`. */
  render(): Promise<string>;
  readonly contentType: string;
}

/**
 * One prom-client `Registry` (not the global one, so two gateways in a process do not clash)
 * with Node's default process metrics, and `prometheusMetrics` from `@x/resilience` writing the
 * packages' metrics into it: `x_dispatcher_*`, `x_rest_client_*`, `x_resilience_*`,
 * `x_route_*`, `x_worker_rpc_*` and the gateway's own `x_gateway_*`.
 */
export function createMetrics(): GatewayMetrics {
  const registry = new promClient.Registry();
  promClient.collectDefaultMetrics({ register: registry, prefix: 'x_gateway_' });
  const sink = prometheusMetrics(promClient, { registry });
  return {
    sink,
    render: () => registry.metrics(),
    contentType: registry.contentType,
  };
}
