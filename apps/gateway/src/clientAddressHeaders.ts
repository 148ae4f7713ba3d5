import type { IncomingMessage } from 'node:http';

/** Headers by which a client could claim another address, host or scheme: set by the gateway only. */
const CLIENT_ADDRESS_HEADERS: ReadonlySet<string> = new Set([
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-forwarded-port',
  'x-real-ip',
]);

/**
 * Drops what a client says about its own address (`Forwarded`, `X-Forwarded-*`, `X-Real-IP`)
 * from the request, in `headers` and `rawHeaders`, before the dispatcher's mounted front door
 * reads it. The gateway is the edge: the front door then names the peer itself
 * (`X-Forwarded-For: <peer>`, `X-Forwarded-Proto: http`) and nothing forged reaches an instance.
 */
export function dropClientAddressHeaders(req: IncomingMessage): void {
  const raw = req.rawHeaders;
  let kept = 0;
  for (let i = 0; i < raw.length; i += 2) {
    if (CLIENT_ADDRESS_HEADERS.has(raw[i]!.toLowerCase())) continue;
    raw[kept++] = raw[i]!;
    raw[kept++] = raw[i + 1]!;
  }
  if (kept === raw.length) return;
  raw.length = kept;
  for (const name of CLIENT_ADDRESS_HEADERS) delete req.headers[name];
}
