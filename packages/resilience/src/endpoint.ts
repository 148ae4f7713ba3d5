/** A place a call can go: what a load balancer returns (dace's `(protocol, netloc)` pair). */
export interface Endpoint {
  /** `http:` or `https:` (or any scheme the caller understands). */
  readonly protocol: string;
  /** `host:port`, the key of per-host limits and breakers. */
  readonly netloc: string;
  /** `protocol//netloc`, the base for relative URLs. */
  readonly origin: string;
}

/**
 * Normalises `http://host:port`, `host:port` (http assumed), a `[protocol, netloc]` pair or an
 * {@link Endpoint} into an {@link Endpoint}. Throws `TypeError` on anything else.
 */
export function toEndpoint(value: string | readonly [string, string] | Endpoint): Endpoint {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const e = value as Partial<Endpoint>;
    if (
      typeof e.protocol === 'string' &&
      typeof e.netloc === 'string' &&
      typeof e.origin === 'string'
    )
      return value as Endpoint;
    throw new TypeError(
      `not an endpoint (expected { protocol, netloc, origin }): ${String(value)}`,
    );
  }
  let protocol: string;
  let netloc: string;
  if (Array.isArray(value)) {
    if (
      value.length !== 2 ||
      typeof value[0] !== 'string' ||
      typeof value[1] !== 'string' ||
      !/^[a-z][a-z0-9+.-]*:?$/i.test(value[0])
    ) {
      throw new TypeError(
        `not an endpoint (expected [protocol, netloc]): ${JSON.stringify(value)}`,
      );
    }
    protocol = value[0];
    netloc = value[1];
  } else {
    if (typeof value !== 'string') throw new TypeError(`not an endpoint: ${String(value)}`);
    const text = value;
    const match = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]+)\/?$/i.exec(text);
    if (match) {
      protocol = match[1]!;
      netloc = match[2]!;
    } else if (/^[^/?#\s:]+(:\d+)?$/.test(text) || /^\[[^\]]+\](:\d+)?$/.test(text)) {
      protocol = 'http';
      netloc = text;
    } else {
      throw new TypeError(
        `not an endpoint (expected "http://host:port" or "host:port"): ${JSON.stringify(text)}`,
      );
    }
  }
  protocol = protocol.toLowerCase().replace(/:?$/, ':');
  if (!netloc || /[\s/?#]/.test(netloc))
    throw new TypeError(`invalid netloc: ${JSON.stringify(netloc)}`);
  return { protocol, netloc: netloc.toLowerCase(), origin: `${protocol}//${netloc.toLowerCase()}` };
}
