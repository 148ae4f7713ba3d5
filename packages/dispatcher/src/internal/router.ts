import type { DispatchRuleSet } from '../dispatchRules.js';
import {
  InvalidInstanceIdError,
  InvalidRequestError,
  ModuleDoesNotExistError,
  NotSupportedWithAutoScalingError,
  VersionDoesNotExistError,
} from '../errors.js';
import { parseHostHeader, type HostHeaderMatch } from '../hostHeader.js';
import type { ModuleSource, RouteDecision, VersionSource } from '../routeDecision.js';
import { bucketOf, type CompiledSplit } from '../trafficSplit.js';
import type { DispatchTarget, HeaderList } from '../types.js';
import type { VersionPool } from './versionPool.js';

/** A module as the router sees it. */
export interface RoutedModule {
  readonly name: string;
  readonly defaultVersion: string;
  readonly versions: ReadonlyMap<string, VersionPool>;
}

/** What the router needs to know about a request. */
export interface RouteInput {
  /** Path without the query. */
  readonly path: string;
  readonly host: string | undefined;
  readonly cookie: string | undefined;
  readonly sourceIp: string;
  /** Headers, for `stickyBy` functions (read lazily). */
  readonly headers: () => HeaderList;
  readonly target: DispatchTarget | undefined;
}

/** Routing state that hot reload swaps as a whole. */
export interface RouterState {
  rules: DispatchRuleSet;
  splits: ReadonlyMap<string, CompiledSplit>;
}

/**
 * The routing order: explicit target → Host header (`[instance.][version.]module.<host>`) →
 * dispatch rules (first match) → traffic split between versions → default module and version.
 */
export class Router {
  constructor(
    private readonly modules: ReadonlyMap<string, RoutedModule>,
    readonly state: RouterState,
    private readonly defaultModule: string,
    private readonly baseHost: string,
    private readonly softRouting: boolean,
    private readonly random: () => number,
  ) {}

  resolve(input: RouteInput, explain: boolean): RouteDecision {
    const reasons: string[] | undefined = explain ? [] : undefined;
    const target = input.target;
    let mod: RoutedModule | undefined;
    let moduleSource: ModuleSource = 'default';
    let version = target?.version;
    let versionSource: VersionSource | undefined = version !== undefined ? 'explicit' : undefined;
    let instance = target?.instance;
    let rule: RouteDecision['rule'];
    let hostname = '';

    if (target?.module !== undefined) {
      mod = this.modules.get(target.module);
      if (mod) {
        moduleSource = 'explicit';
        reasons?.push(`explicit target module ${target.module}`);
      } else if (this.softRouting) {
        mod = this.soft();
        moduleSource = 'soft';
        reasons?.push(
          `module ${JSON.stringify(target.module)} does not exist; soft routing chose ${mod.name}`,
        );
      } else {
        throw new ModuleDoesNotExistError(target.module);
      }
    } else {
      const host = this.parseHost(input.host);
      switch (host.kind) {
        case 'invalid':
          throw new InvalidRequestError(`bad Host header: ${host.reason}`);
        case 'prefix': {
          hostname = host.hostname;
          const labels = host.labels;
          const name = labels[labels.length - 1]!;
          const found = this.modules.get(name);
          if (found) {
            mod = found;
            moduleSource = 'host';
            if (labels.length >= 2 && version === undefined) {
              version = labels[labels.length - 2];
              versionSource = 'host';
            }
            if (labels.length === 3 && instance === undefined) instance = labels[0];
            reasons?.push(
              `Host ${host.hostname} names ${labels.length === 3 ? 'instance.version.module' : labels.length === 2 ? 'version.module' : 'module'} ${labels.join('.')}`,
            );
          } else if (
            labels.length === 1 &&
            this.modules.get(this.defaultModule)?.versions.has(name)
          ) {
            mod = this.modules.get(this.defaultModule)!;
            moduleSource = 'host';
            if (version === undefined) {
              version = name;
              versionSource = 'host';
            }
            reasons?.push(
              `Host ${host.hostname} names version ${name} of the default module ${mod.name}`,
            );
          } else if (labels.length === 1) {
            reasons?.push(
              `Host label ${JSON.stringify(name)} is neither a module nor a version of ${this.defaultModule}; ignored`,
            );
          } else {
            throw new ModuleDoesNotExistError(name);
          }
          break;
        }
        case 'base':
          hostname = host.hostname;
          reasons?.push(`Host ${host.hostname} is the dispatcher's own host: dispatch rules apply`);
          break;
        case 'other':
          hostname = host.hostname;
          reasons?.push(
            `Host ${host.hostname} is not under ${this.baseHost}: dispatch rules apply`,
          );
          break;
        case 'none':
          reasons?.push('no Host header: dispatch rules apply');
          break;
      }
      if (!mod) {
        const matched = this.state.rules.match(hostname, input.path);
        if (matched) {
          mod = this.modules.get(matched.module);
          if (!mod) throw new ModuleDoesNotExistError(matched.module);
          moduleSource = 'rule';
          rule = { index: matched.index, url: matched.url, module: matched.module };
          reasons?.push(
            `dispatch rule ${matched.index} (${matched.url}) matched: module ${matched.module}`,
          );
        } else {
          if (this.state.rules.size > 0)
            reasons?.push(
              input.path.startsWith('/_ah/')
                ? `${input.path} is under /_ah/: dispatch rules do not apply`
                : `none of the ${this.state.rules.size} dispatch rules matched`,
            );
        }
      }
    }
    if (!mod) {
      mod = this.modules.get(this.defaultModule);
      if (mod) {
        reasons?.push(`default module ${mod.name}`);
      } else if (this.softRouting && this.modules.size > 0) {
        mod = this.soft();
        moduleSource = 'soft';
        reasons?.push(
          `no default module ${JSON.stringify(this.defaultModule)}; soft routing chose ${mod.name}`,
        );
      } else {
        throw new ModuleDoesNotExistError(this.defaultModule);
      }
    }

    let bucket: number | undefined;
    let setCookie: string | undefined;
    if (version !== undefined) {
      if (!mod.versions.has(version)) throw new VersionDoesNotExistError(mod.name, version);
      reasons?.push(`${versionSource} version ${version}`);
    } else {
      const split = this.state.splits.get(mod.name);
      if (split) {
        const sticky = split.stickyBy;
        if (sticky === 'cookie') {
          bucket = split.bucketFromCookie(input.cookie);
          if (bucket === undefined) {
            bucket = Math.floor(this.random() * 1000) % 1000;
            setCookie = split.setCookie(bucket);
          }
        } else if (sticky === 'ip') {
          bucket = bucketOf(input.sourceIp);
        } else if (typeof sticky === 'function') {
          const key = sticky({ headers: input.headers(), sourceIp: input.sourceIp });
          bucket =
            typeof key === 'string' ? bucketOf(key) : Math.floor(this.random() * 1000) % 1000;
        } else {
          bucket = Math.floor(this.random() * 1000) % 1000;
        }
        version = split.pick(bucket);
        versionSource = 'split';
        reasons?.push(
          `traffic split of ${mod.name} (${typeof sticky === 'function' ? 'custom key' : sticky}) bucket ${bucket}: version ${version}${setCookie ? ' (new sticky cookie)' : ''}`,
        );
      } else {
        version = mod.defaultVersion;
        versionSource = 'default';
        reasons?.push(`default version ${version} of ${mod.name}`);
      }
    }

    if (instance !== undefined) {
      const pool = mod.versions.get(version)!;
      if (pool.kind === 'automatic')
        throw new NotSupportedWithAutoScalingError(mod.name, version, 'addressing an instance');
      if (!pool.instances.has(instance))
        throw new InvalidInstanceIdError(mod.name, version, instance);
      reasons?.push(`instance ${instance} addressed`);
    } else if (reasons) {
      const pool = mod.versions.get(version)!;
      reasons.push(
        `instance chosen at request time among ${pool.readyCount} ready instance(s) (${pool.kind} scaling, ${pool.kind === 'automatic' ? 'App Engine bin-packing' : pool.spec.balancer})`,
      );
    }

    return {
      module: mod.name,
      version,
      instance,
      moduleSource,
      versionSource: versionSource!,
      rule,
      bucket,
      setCookie,
      reasons: reasons ?? EMPTY,
    };
  }

  /** Host headers repeat: parsed results are cached (bounded; cleared when full). */
  private readonly hostCache = new Map<string, HostHeaderMatch>();

  private parseHost(value: string | undefined): HostHeaderMatch {
    if (value === undefined) return parseHostHeader(value, this.baseHost);
    let parsed = this.hostCache.get(value);
    if (parsed === undefined) {
      parsed = parseHostHeader(value, this.baseHost);
      if (this.hostCache.size >= 1_000) this.hostCache.clear();
      this.hostCache.set(value, parsed);
    }
    return parsed;
  }

  private soft(): RoutedModule {
    return this.modules.get(this.defaultModule) ?? this.modules.values().next().value!;
  }
}

const EMPTY: readonly string[] = Object.freeze([]);
