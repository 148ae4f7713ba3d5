import { InvalidConfigError } from './errors.js';

/** What keeps a client on the same version of a split module. */
export type StickyBy =
  | 'cookie'
  | 'ip'
  | 'random'
  | ((request: {
      readonly headers: ReadonlyArray<readonly [string, string]>;
      readonly sourceIp: string;
    }) => string | undefined);

/** Splits the traffic of one module between its versions by weight. */
export interface TrafficSplit {
  readonly module: string;
  /** Version → weight (>= 0, at least one > 0). Weights are relative: 90/10 = 9/1. */
  readonly weights: Readonly<Record<string, number>>;
  /**
   * `'cookie'` (default): a bucket number stored in a cookie, set on the first response;
   * `'ip'`: a hash of the client address; `'random'`: no stickiness; or a function returning a
   * key to hash (undefined falls back to random).
   */
  readonly stickyBy?: StickyBy;
  /** Cookie name for `'cookie'`. Default `'XSPLIT'` (App Engine used `GOOGAPPUID`). */
  readonly cookieName?: string;
  /** Cookie lifetime in ms. Default 30 days. */
  readonly cookieMaxAgeMs?: number;
}

/** Number of buckets a split is cut into (per-mille precision). */
export const SPLIT_BUCKETS = 1000;
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** A validated split: `pick(bucket)` maps a bucket in [0, 1000) to a version in O(versions). */
export class CompiledSplit {
  readonly module: string;
  readonly versions: readonly string[];
  /** Upper bucket bound (exclusive) of each version. */
  readonly bounds: readonly number[];
  readonly stickyBy: StickyBy;
  readonly cookieName: string;
  /** `name=` prefix searched for in the Cookie header. */
  readonly cookiePrefix: string;
  readonly cookieMaxAgeS: number;

  constructor(split: TrafficSplit, knownVersions?: ReadonlySet<string>) {
    if (typeof split !== 'object' || split === null)
      throw new InvalidConfigError('a traffic split must be an object');
    const { module, weights, stickyBy = 'cookie', cookieName = 'XSPLIT' } = split;
    const { cookieMaxAgeMs = 30 * 24 * 3600 * 1000 } = split;
    if (typeof module !== 'string' || module === '')
      throw new InvalidConfigError('a traffic split needs a module');
    if (typeof weights !== 'object' || weights === null)
      throw new InvalidConfigError(`split of ${module}: weights must be an object`);
    const entries = Object.entries(weights);
    let total = 0;
    for (const [version, weight] of entries) {
      if (typeof weight !== 'number' || !(weight >= 0 && weight < Infinity))
        throw new InvalidConfigError(
          `split of ${module}: weight of ${version} must be a finite number >= 0`,
        );
      if (knownVersions && !knownVersions.has(version))
        throw new InvalidConfigError(
          `split of ${module}: version ${JSON.stringify(version)} does not exist`,
        );
      total += weight;
    }
    if (!(total > 0)) throw new InvalidConfigError(`split of ${module}: weights must not all be 0`);
    if (!(
      stickyBy === 'cookie' ||
      stickyBy === 'ip' ||
      stickyBy === 'random' ||
      typeof stickyBy === 'function'
    ))
      throw new InvalidConfigError(
        `split of ${module}: stickyBy must be cookie, ip, random or a function`,
      );
    if (typeof cookieName !== 'string' || !COOKIE_NAME.test(cookieName))
      throw new InvalidConfigError(`split of ${module}: invalid cookie name`);
    if (!(cookieMaxAgeMs >= 0 && cookieMaxAgeMs < Infinity))
      throw new InvalidConfigError(
        `split of ${module}: cookieMaxAgeMs must be a finite number >= 0`,
      );
    const versions: string[] = [];
    const bounds: number[] = [];
    let acc = 0;
    for (const [version, weight] of entries) {
      if (weight === 0) continue;
      acc += weight;
      versions.push(version);
      bounds.push(Math.round((acc / total) * SPLIT_BUCKETS));
    }
    bounds[bounds.length - 1] = SPLIT_BUCKETS;
    this.module = module;
    this.versions = versions;
    this.bounds = bounds;
    this.stickyBy = stickyBy;
    this.cookieName = cookieName;
    this.cookiePrefix = `${cookieName}=`;
    this.cookieMaxAgeS = Math.floor(cookieMaxAgeMs / 1000);
  }

  /** The version serving `bucket` (0 to 999). */
  pick(bucket: number): string {
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) if (bucket < bounds[i]!) return this.versions[i]!;
    return this.versions[this.versions.length - 1]!;
  }

  /** The bucket stored in a Cookie header, or undefined when absent or malformed. */
  bucketFromCookie(cookieHeader: string | undefined): number | undefined {
    if (!cookieHeader) return undefined;
    let at = cookieHeader.indexOf(this.cookiePrefix);
    while (at > 0) {
      const before = cookieHeader.charCodeAt(at - 1);
      if (before === 59 /* ; */ || before === 32 /* space */) break;
      at = cookieHeader.indexOf(this.cookiePrefix, at + 1);
    }
    if (at < 0) return undefined;
    let value = 0;
    let digits = 0;
    for (let i = at + this.cookiePrefix.length; i < cookieHeader.length; i++) {
      const c = cookieHeader.charCodeAt(i);
      if (c === 59 || c === 32) break;
      if (c < 48 || c > 57 || ++digits > 4) return undefined;
      value = value * 10 + (c - 48);
    }
    return digits > 0 && value < SPLIT_BUCKETS ? value : undefined;
  }

  /** The `Set-Cookie` value storing `bucket`. */
  setCookie(bucket: number): string {
    return `${this.cookieName}=${bucket}; Path=/; Max-Age=${this.cookieMaxAgeS}; HttpOnly; SameSite=Lax`;
  }
}

/** FNV-1a hash of `key` into a bucket in [0, 1000). */
export function bucketOf(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % SPLIT_BUCKETS;
}
