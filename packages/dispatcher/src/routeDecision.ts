/** Which step of the routing order chose the module. */
export type ModuleSource = 'explicit' | 'host' | 'rule' | 'default' | 'soft';
/** Which step chose the version. */
export type VersionSource = 'explicit' | 'host' | 'split' | 'default';

/** Where a request goes and why: the answer of `dispatcher.explain()`. */
export interface RouteDecision {
  readonly module: string;
  readonly version: string;
  /** Set when an instance was addressed (explicitly or by Host header). */
  readonly instance: string | undefined;
  readonly moduleSource: ModuleSource;
  readonly versionSource: VersionSource;
  /** The dispatch rule that matched, if one did. */
  readonly rule:
    { readonly index: number; readonly url: string; readonly module: string } | undefined;
  /** The traffic-split bucket (0–999) when a split chose the version. */
  readonly bucket: number | undefined;
  /** `Set-Cookie` value to send back so the client sticks to this version. */
  readonly setCookie: string | undefined;
  /** Human-readable steps, filled by `explain()` only. */
  readonly reasons: readonly string[];
}
