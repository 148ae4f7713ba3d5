import { duration } from './duration.js';
import type { ConnectionOptions } from 'node:tls';
import { Agent, EnvHttpProxyAgent, ProxyAgent, type Dispatcher } from 'undici';

/** TLS settings for outgoing connections (dace's `context_factory`): CA, client certificate, SNI… */
export type TlsOptions = Pick<
  ConnectionOptions,
  | 'ca'
  | 'cert'
  | 'key'
  | 'passphrase'
  | 'pfx'
  | 'rejectUnauthorized'
  | 'servername'
  | 'ciphers'
  | 'minVersion'
  | 'maxVersion'
  | 'checkServerIdentity'
>;

/** A proxy (dace's `use_proxy`): a URL, `{ uri, token }`, or `'env'` for `HTTP(S)_PROXY`/`NO_PROXY`. */
export type ProxyOption = string | { readonly uri: string; readonly token?: string } | 'env';

/** Options of {@link createAgent}. */
export interface AgentOptions {
  /** Connections per origin (dace's `http_pool_size`). Default 10. */
  readonly httpPoolSize?: number;
  /** Connect timeout in ms. Default 1000. */
  readonly connectTimeout?: number;
  readonly tls?: TlsOptions;
  readonly proxy?: ProxyOption;
}

/** The undici dispatcher behind `Call.http`: an `Agent`, `ProxyAgent` or `EnvHttpProxyAgent`. */
export function createAgent(options: AgentOptions = {}): Dispatcher {
  const { httpPoolSize = 10, tls = {}, proxy } = options;
  const connectTimeout = duration(options.connectTimeout ?? 1000, 'connectTimeout', {
    exclusiveMin: true,
    allowInfinity: false,
  });
  if (!Number.isInteger(httpPoolSize) || httpPoolSize < 1)
    throw new RangeError(`httpPoolSize must be an integer >= 1, got ${httpPoolSize}`);
  const connect = { timeout: connectTimeout, ...tls };
  if (proxy === 'env')
    return new EnvHttpProxyAgent({ connections: httpPoolSize, connect, requestTls: connect });
  if (proxy !== undefined) {
    const { uri, token } = typeof proxy === 'string' ? { uri: proxy, token: undefined } : proxy;
    try {
      new URL(uri);
    } catch {
      throw new TypeError(`proxy must be a URL, got ${JSON.stringify(uri)}`);
    }
    return new ProxyAgent({
      uri,
      ...(token ? { token } : {}),
      connections: httpPoolSize,
      connect,
      requestTls: connect,
    });
  }
  return new Agent({ connections: httpPoolSize, connect });
}
