import { Tracer, type TraceAttributes } from '@x/resilience';

/**
 * Client spans: one `client` span per call (named after the method) with a child `attempt` span
 * per attempt, retry and hedge. Also the `x:worker-rpc:call` tracing channel.
 */
export const callTracer = new Tracer('@x/worker-rpc', 'x:worker-rpc:call');

/** Worker spans: one `server` span per handled call. Also the `x:worker-rpc:handle` tracing channel. */
export const handleTracer = new Tracer('@x/worker-rpc', 'x:worker-rpc:handle');

/** `rpc.system` of a dialect (OpenTelemetry RPC semantic conventions). */
export function rpcSystem(toto: boolean): string {
  return toto ? 'toto' : 'x-wrpc';
}

const serverAttributes = new WeakMap<object, TraceAttributes>();

/**
 * `server.address` / `server.port` of an endpoint address (`tcp://host:port`, `http://host:port/…`);
 * the whole address as `server.address` when it has no host (`ipc://…`). Cached per endpoint.
 */
export function endpointAttributes(endpoint: { readonly address: string }): TraceAttributes {
  let attributes = serverAttributes.get(endpoint);
  if (attributes !== undefined) return attributes;
  const address = endpoint.address;
  attributes = { 'server.address': address };
  try {
    const url = new URL(address);
    if (url.hostname !== '') {
      const port = Number(
        url.port || (url.protocol === 'https:' ? 443 : url.protocol === 'http:' ? 80 : NaN),
      );
      attributes = {
        'server.address': url.hostname.replace(/^\[|\]$/g, ''),
        ...(Number.isInteger(port) ? { 'server.port': port } : {}),
      };
    }
  } catch {
    // not a URL: keep the address as it is
  }
  serverAttributes.set(endpoint, attributes);
  return attributes;
}
