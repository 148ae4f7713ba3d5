import { ValueErrorType } from '@sinclair/typebox/errors';
import { Value } from '@sinclair/typebox/value';
import { parse as parseYaml } from 'yaml';
import { DispatchFileSchema, DispatchRuleSchema } from './dispatchSchema.js';
import { InvalidDispatchRuleError } from './errors.js';

/** One `dispatch.yaml` entry: `url` (`host_pattern/path_pattern`) and `module` or `service`. */
export interface DispatchRule {
  /** `*.example.com/api/*`, `example.com/`, or `*` plus a path for any host; at most 100 characters. */
  readonly url: string;
  readonly module?: string;
  /** Same as `module` (App Engine's newer name); give exactly one of the two. */
  readonly service?: string;
}

/** A validated, precompiled rule. */
export interface CompiledDispatchRule {
  /** Position in the rule list (the first match wins). */
  readonly index: number;
  readonly url: string;
  readonly module: string;
  /** `'any'`, `'exact'` (host equals `host`) or `'suffix'` (host ends with `host`). */
  readonly hostMatch: 'any' | 'exact' | 'suffix';
  readonly host: string;
  /** The path, without the trailing `*` of a prefix rule. */
  readonly path: string;
  readonly pathPrefix: boolean;
}

/** Options of {@link compileDispatchRules} and {@link parseDispatchYaml}. */
export interface DispatchRuleOptions {
  /**
   * Most rules accepted. Default 20, App Engine's limit for `dispatch.yaml`; pass a larger number
   * (e.g. `maxRules: 100`) to lift it.
   */
  readonly maxRules?: number;
  /** When given, a rule naming a module outside this set is rejected. */
  readonly modules?: ReadonlySet<string> | readonly string[];
}

const MAX_URL = 100;
/** App Engine accepts at most 20 rules in `dispatch.yaml`. */
const APP_ENGINE_MAX_RULES = 20;
const HOST_EXACT = /^([a-z0-9]([a-z0-9-]*[a-z0-9])*\.)*([a-z0-9]([a-z0-9-]*[a-z0-9])*)$/;
const HOST_SUFFIX =
  /^(\*|\*[a-z0-9-]*[a-z0-9]|\*(\.|[a-z0-9-]*[a-z0-9]\.)([a-z0-9]([a-z0-9-]*[a-z0-9])*\.)*([a-z0-9]([a-z0-9-]*[a-z0-9])*))$/;
const IPV4 = /^(\d{1,3})(\.\d{1,3}){3}$/;
const PATH = /^\/[\x21-\x7e]*$/;
const RULE_KEYS = Object.keys(DispatchRuleSchema.properties);
const FILE_KEYS = Object.keys(DispatchFileSchema.properties);
/** `/_ah/` paths are never dispatched, except these (App Engine's allow-list). */
const AH_ALLOWED = ['/_ah/queue/deferred'];

/**
 * A compiled rule list. `match` is a linear first-match scan with plain string comparisons (no
 * regular expressions at request time).
 */
export class DispatchRuleSet {
  constructor(readonly rules: readonly CompiledDispatchRule[]) {}

  /** Number of rules. */
  get size(): number {
    return this.rules.length;
  }

  /**
   * The first rule matching `hostname` (lowercase, without port; `''` when unknown) and `path`
   * (without the query), or undefined. Paths under `/_ah/` never match (except
   * `/_ah/queue/deferred`).
   */
  match(hostname: string, path: string): CompiledDispatchRule | undefined {
    const rules = this.rules;
    if (rules.length === 0) return undefined;
    if (path.startsWith('/_ah/') && !AH_ALLOWED.some(p => path.startsWith(p))) return undefined;
    for (let i = 0; i < rules.length; i++) {
      const rule = rules[i]!;
      if (rule.pathPrefix ? !path.startsWith(rule.path) : path !== rule.path) continue;
      if (
        rule.hostMatch === 'exact'
          ? hostname !== rule.host
          : rule.hostMatch === 'suffix' && !hostname.endsWith(rule.host)
      )
        continue;
      return rule;
    }
    return undefined;
  }
}

/** An empty rule set. */
export const noDispatchRules: DispatchRuleSet = new DispatchRuleSet([]);

/**
 * Validates and compiles dispatch rules (App Engine `dispatch.yaml` semantics): a leading `*` in
 * the host makes it a suffix match, a trailing `*` in the path a prefix match, globs anywhere
 * else, IPv4 hosts, `-dot-` hosts and URLs over 100 characters are rejected. A path-only `url`
 * (`/api/*`) matches any host. Throws `INVALID_DISPATCH_RULE` naming the bad entry.
 */
export function compileDispatchRules(
  rules: readonly DispatchRule[],
  options: DispatchRuleOptions = {},
): DispatchRuleSet {
  const { maxRules = APP_ENGINE_MAX_RULES } = options;
  if (!(Number.isInteger(maxRules) && maxRules >= 0))
    throw new InvalidDispatchRuleError(
      `maxRules must be an integer >= 0, got ${describeValue(maxRules)}`,
    );
  const modules = options.modules === undefined ? undefined : new Set(options.modules);
  if (!Array.isArray(rules)) throw new InvalidDispatchRuleError('rules must be a list');
  if (rules.length > maxRules)
    throw new InvalidDispatchRuleError(
      `${rules.length} rules, at most ${maxRules} allowed` +
        (maxRules === APP_ENGINE_MAX_RULES
          ? ` (App Engine's limit for dispatch.yaml; pass maxRules to lift it)`
          : ''),
    );
  const compiled = rules.map((rule, index) => compileRule(rule, index, modules));
  return new DispatchRuleSet(Object.freeze(compiled));
}

function compileRule(
  rule: unknown,
  index: number,
  modules: ReadonlySet<string> | undefined,
): CompiledDispatchRule {
  const shape = shapeError(rule, index);
  if (shape) throw shape;
  const { url, module, service } = rule as DispatchRule & { url: string };
  if (module !== undefined && service !== undefined)
    throw new InvalidDispatchRuleError(
      `dispatch[${index}]: give exactly one of module and service, got both`,
      index,
    );
  const target = module ?? service;
  if (target === undefined)
    throw new InvalidDispatchRuleError(
      `dispatch[${index}]: give exactly one of module and service, got neither`,
      index,
    );
  if (modules && !modules.has(target))
    throw new InvalidDispatchRuleError(
      `dispatch[${index}].${module !== undefined ? 'module' : 'service'}: module ${JSON.stringify(target)} does not exist (known: ${[...modules].join(', ') || 'none'})`,
      index,
    );
  const at = `dispatch[${index}].url: `;
  const slash = url.indexOf('/');
  if (slash < 0)
    throw new InvalidDispatchRuleError(`${at}url ${JSON.stringify(url)} has no path`, index);
  const hostPattern = url.slice(0, slash).toLowerCase();
  let path = url.slice(slash);
  let hostMatch: CompiledDispatchRule['hostMatch'];
  let host: string;
  if (hostPattern === '' || hostPattern === '*') {
    hostMatch = 'any';
    host = '';
  } else if (hostPattern.startsWith('*')) {
    if (!HOST_SUFFIX.test(hostPattern))
      throw new InvalidDispatchRuleError(
        `${at}invalid host pattern ${JSON.stringify(hostPattern)}`,
        index,
      );
    hostMatch = 'suffix';
    host = hostPattern.slice(1);
  } else {
    if (!HOST_EXACT.test(hostPattern))
      throw new InvalidDispatchRuleError(`${at}invalid host ${JSON.stringify(hostPattern)}`, index);
    if (IPV4.test(hostPattern))
      throw new InvalidDispatchRuleError(
        `${at}IPv4 hosts are not allowed in dispatch rules`,
        index,
      );
    hostMatch = 'exact';
    host = hostPattern;
  }
  if (host.includes('-dot-'))
    throw new InvalidDispatchRuleError(
      `${at}-dot- host names are not allowed in dispatch rules`,
      index,
    );
  let pathPrefix = false;
  if (path.endsWith('*')) {
    pathPrefix = true;
    path = path.slice(0, -1);
  }
  if (!PATH.test(path) || path.includes('*') || path.includes('?') || path.includes('#'))
    throw new InvalidDispatchRuleError(
      `${at}invalid path ${JSON.stringify(url.slice(slash))} (a glob may only end the path)`,
      index,
    );
  return Object.freeze({ index, url, module: target, hostMatch, host, path, pathPrefix });
}

/**
 * The first way `rule` misses {@link DispatchRuleSchema}, as an error naming the field
 * (`dispatch[2].url`), what it expects and what it got; undefined when the shape is right.
 */
function shapeError(rule: unknown, index: number): InvalidDispatchRuleError | undefined {
  if (Value.Check(DispatchRuleSchema, rule)) return undefined;
  const error = Value.Errors(DispatchRuleSchema, rule).First();
  if (error === undefined) return undefined;
  const key = error.path.split('/')[1]?.replace(/~1/g, '/').replace(/~0/g, '~');
  const field = key === undefined ? `dispatch[${index}]` : `dispatch[${index}].${key}`;
  const got = error.value === undefined ? 'nothing' : describeValue(error.value);
  let message: string;
  if (key === undefined)
    message = `${field} must be a mapping with url and module (or service), got ${got}`;
  else if (error.type === ValueErrorType.ObjectAdditionalProperties)
    message = `${field} is an unknown field; expected one of ${RULE_KEYS.join(', ')}`;
  else if (key === 'url' && error.type === ValueErrorType.StringMaxLength)
    message = `${field} longer than ${MAX_URL} characters: expected at most ${MAX_URL}, got ${(error.value as string).length}`;
  else if (key === 'url') message = `${field} must be a non-empty string, got ${got}`;
  else
    message = `${field}: invalid module name ${got}, expected a lowercase host-name label (a-z, 0-9, -)`;
  return new InvalidDispatchRuleError(message, index);
}

/** A short description of a value for an error message (YAML aliases can make it circular). */
function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object' && value !== null) return 'a mapping';
  return typeof value === 'symbol' ? 'a symbol' : String(value);
}

/**
 * Parses a `dispatch.yaml` document (`dispatch:` list; an `application:` key is ignored) into a
 * compiled rule set. Throws `INVALID_DISPATCH_RULE` for bad YAML or bad entries.
 */
export function parseDispatchYaml(
  text: string,
  options: DispatchRuleOptions = {},
): DispatchRuleSet {
  if (typeof text !== 'string') throw new InvalidDispatchRuleError('dispatch.yaml must be text');
  if (text.length > 1_000_000) throw new InvalidDispatchRuleError('dispatch.yaml is too large');
  let doc: unknown;
  try {
    doc = parseYaml(text, { maxAliasCount: 100, uniqueKeys: true, logLevel: 'error' });
  } catch (error) {
    throw new InvalidDispatchRuleError(
      `dispatch.yaml is not valid YAML: ${(error as Error).message}`,
      undefined,
      { cause: error },
    );
  }
  if (doc === null || doc === undefined) return compileDispatchRules([], options);
  if (typeof doc !== 'object' || Array.isArray(doc))
    throw new InvalidDispatchRuleError(
      `dispatch.yaml must be a mapping with a dispatch list, got ${describeValue(doc)}`,
    );
  for (const key of Object.keys(doc)) {
    if (!FILE_KEYS.includes(key))
      throw new InvalidDispatchRuleError(
        `unknown top-level key ${JSON.stringify(key)}; expected one of ${FILE_KEYS.join(', ')}`,
      );
  }
  const list = (doc as { dispatch?: unknown }).dispatch;
  if (list === undefined || list === null) return compileDispatchRules([], options);
  if (!Array.isArray(list))
    throw new InvalidDispatchRuleError(`dispatch must be a list, got ${describeValue(list)}`);
  return compileDispatchRules(list as DispatchRule[], options);
}
