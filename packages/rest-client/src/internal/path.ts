import { InvalidCallError } from '../errors.js';

/** Query parameters: arrays repeat the key (lupyne's `urlencode(doseq=True)`); null/undefined are skipped. */
export type RestQuery = Readonly<
  Record<
    string,
    | string
    | number
    | boolean
    | bigint
    | null
    | undefined
    | readonly (string | number | boolean | bigint)[]
  >
>;

const MAX_PATH = 16_384;

/**
 * Checks a request path and returns it with `query` appended. Accepted: an origin-form path
 * (`/a/b?c=d`) of visible ASCII characters. Rejected with `INVALID_REQUEST`: anything that is not a
 * string, an absolute URL (`http://other/`), a scheme-relative `//other/x`, a path not starting
 * with `/`, backslashes, whitespace, control and non-ASCII characters (percent-encode them), a
 * fragment, dot segments (`/../`, `/%2e%2e/`) that would escape the host's tree, and paths over
 * 16 KiB.
 */
export function buildPath(path: unknown, query: RestQuery | undefined): string {
  if (typeof path !== 'string')
    throw new InvalidCallError(`path must be a string, got ${describe(path)}`);
  const n = path.length;
  if (n === 0 || path.charCodeAt(0) !== 47 /* / */) {
    throw new InvalidCallError(
      /^[a-z][a-z0-9+.-]*:/i.test(path)
        ? `path must be relative to the host, not an absolute URL: ${JSON.stringify(path.slice(0, 200))}`
        : `path must start with "/": ${JSON.stringify(path.slice(0, 200))}`,
    );
  }
  if (n > MAX_PATH) throw new InvalidCallError(`path longer than ${MAX_PATH} characters`);
  if (n > 1 && path.charCodeAt(1) === 47) {
    throw new InvalidCallError(
      `path must not start with "//" (it would name another host): ${JSON.stringify(path.slice(0, 200))}`,
    );
  }
  let inQuery = false;
  let dotSegment = false;
  for (let i = 0; i < n; i++) {
    const c = path.charCodeAt(i);
    if (c <= 32 || c >= 127 || c === 92 /* \ */ || c === 35 /* # */) {
      throw new InvalidCallError(
        `path has a character that must be percent-encoded (${c === 35 ? '"#"' : c === 92 ? 'backslash' : `code ${c}`}) at ${i}: ${JSON.stringify(path.slice(0, 200))}`,
      );
    }
    if (c === 63 /* ? */) inQuery = true;
    else if (!inQuery && (c === 46 /* . */ || c === 37) /* % */) dotSegment = true;
  }
  if (dotSegment && hasDotSegment(path)) {
    throw new InvalidCallError(
      `path has a dot segment ("." or ".."), which could escape the host's tree: ${JSON.stringify(path.slice(0, 200))}`,
    );
  }
  if (query === undefined || query === null) return path;
  const encoded = encodeQuery(query);
  if (encoded === '') return path;
  return `${path}${inQuery ? (path.endsWith('?') || path.endsWith('&') ? '' : '&') : '?'}${encoded}`;
}

function hasDotSegment(path: string): boolean {
  const end = path.indexOf('?');
  const segments = (end < 0 ? path : path.slice(0, end)).split('/');
  for (const segment of segments) {
    if (segment.length === 0 || segment.length > 6) continue;
    const s = segment.toLowerCase().replaceAll('%2e', '.');
    if (s === '.' || s === '..') return true;
  }
  return false;
}

/** Encodes query parameters like `URLSearchParams` (spaces as `+`), repeating keys for arrays. */
export function encodeQuery(query: RestQuery): string {
  if (typeof query !== 'object' || Array.isArray(query)) {
    throw new InvalidCallError(`query must be an object of parameters, got ${describe(query)}`);
  }
  const params = new URLSearchParams();
  for (const key of Object.keys(query)) {
    const value = query[key];
    if (value === undefined || value === null) continue;
    if (Array.isArray(value)) {
      for (const item of value as readonly unknown[]) params.append(key, scalar(key, item));
    } else {
      params.append(key, scalar(key, value));
    }
  }
  return params.toString();
}

function scalar(key: string, value: unknown): string {
  switch (typeof value) {
    case 'string':
      return value;
    case 'number':
    case 'boolean':
    case 'bigint':
      return String(value);
    default:
      throw new InvalidCallError(
        `query parameter ${JSON.stringify(key)} must be a string, number, boolean or an array of them, got ${describe(value)}`,
      );
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}
