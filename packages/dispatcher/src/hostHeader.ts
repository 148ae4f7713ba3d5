/** What a `Host` header says about routing, from {@link parseHostHeader}. */
export type HostHeaderMatch =
  /** No usable Host header. */
  | { readonly kind: 'none' }
  /** The dispatcher's own host name: route by dispatch rules. */
  | { readonly kind: 'base'; readonly hostname: string; readonly port: number | undefined }
  /**
   * `[instance.][version.]module.<host>` (or the `-dot-` form): `labels` holds 1 to 3 labels,
   * left to right (`['1', 'v2', 'api']` for `1.v2.api.example.com`).
   */
  | {
      readonly kind: 'prefix';
      readonly hostname: string;
      readonly port: number | undefined;
      readonly labels: readonly string[];
    }
  /** A host that is not under the dispatcher's host: route by dispatch rules. */
  | { readonly kind: 'other'; readonly hostname: string; readonly port: number | undefined }
  /** A malformed Host header (bad characters, bad port, too many labels). */
  | { readonly kind: 'invalid'; readonly reason: string };

const NONE: HostHeaderMatch = Object.freeze({ kind: 'none' });
const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;
const HOSTNAME = /^[a-z0-9_.-]+$/;
const IPV6 = /^\[[0-9a-f:.]+\]$/;

/**
 * Parses a `Host` header against the dispatcher's host name `baseHost` (lowercase, without a
 * port). Never throws: anything malformed comes back as `{ kind: 'invalid', reason }`.
 *
 * - `api.example.com` with base `example.com` → prefix `['api']`
 * - `v2.api.example.com` → `['v2', 'api']`; `1.v2.api.example.com` → `['1', 'v2', 'api']`
 * - `1-dot-v2-dot-api.example.com` → `['1', 'v2', 'api']` (App Engine's HTTPS form)
 * - `example.com:8080` → base; `other.org` → other; four or more labels → invalid.
 */
export function parseHostHeader(value: string | undefined, baseHost: string): HostHeaderMatch {
  if (value === undefined || value === '') return NONE;
  if (typeof value !== 'string') return { kind: 'invalid', reason: 'Host header is not a string' };
  if (value.length > 300) return { kind: 'invalid', reason: 'Host header too long' };
  let host = value.trim().toLowerCase();
  let port: number | undefined;
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    if (end < 0) return { kind: 'invalid', reason: 'unterminated IPv6 literal' };
    const rest = host.slice(end + 1);
    host = host.slice(0, end + 1);
    if (!IPV6.test(host)) return { kind: 'invalid', reason: 'bad IPv6 literal' };
    if (rest !== '') {
      if (rest[0] !== ':') return { kind: 'invalid', reason: 'junk after IPv6 literal' };
      const p = parsePort(rest.slice(1));
      if (p === undefined) return { kind: 'invalid', reason: 'bad port' };
      port = p;
    }
    return host === baseHost
      ? { kind: 'base', hostname: host, port }
      : { kind: 'other', hostname: host, port };
  }
  const colon = host.lastIndexOf(':');
  if (colon >= 0) {
    const p = parsePort(host.slice(colon + 1));
    if (p === undefined) return { kind: 'invalid', reason: 'bad port' };
    port = p;
    host = host.slice(0, colon);
  }
  if (host.endsWith('.')) host = host.slice(0, -1); // fully qualified form
  if (host === '' || host.length > 253 || !HOSTNAME.test(host))
    return { kind: 'invalid', reason: 'bad host name' };
  if (host === baseHost) return { kind: 'base', hostname: host, port };
  if (
    baseHost === '' ||
    host.length <= baseHost.length + 1 ||
    !host.endsWith(baseHost) ||
    host.charCodeAt(host.length - baseHost.length - 1) !== 46 /* . */
  ) {
    return { kind: 'other', hostname: host, port };
  }
  const prefix = host.slice(0, host.length - baseHost.length - 1);
  const labels: string[] = [];
  for (const part of prefix.split('.')) {
    if (part.includes('-dot-')) labels.push(...part.split('-dot-'));
    else labels.push(part);
  }
  if (labels.length > 3)
    return { kind: 'invalid', reason: `too many labels before ${baseHost}: ${prefix}` };
  for (const label of labels) {
    if (!LABEL.test(label))
      return { kind: 'invalid', reason: `bad label ${JSON.stringify(label)}` };
  }
  return { kind: 'prefix', hostname: host, port, labels };
}

function parsePort(text: string): number | undefined {
  if (text.length === 0 || text.length > 5) return undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return undefined;
  }
  const port = Number(text);
  return port <= 65535 ? port : undefined;
}

/** True when `name` can be a host-name label (module, version and instance names must be). */
export function isHostLabel(name: string): boolean {
  return typeof name === 'string' && LABEL.test(name) && !name.includes('-dot-');
}
