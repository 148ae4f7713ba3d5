import {
  InvalidConfigError,
  InvalidInstanceIdError,
  ModuleDoesNotExistError,
  NotSupportedWithAutoScalingError,
  VersionDoesNotExistError,
} from '../errors.js';
import { isHostLabel } from '../hostHeader.js';
import { normalizeVersionSpec, type ModuleSpec } from '../versionSpec.js';
import type { RoutedModule } from './router.js';
import { VersionPool, type PoolServices } from './versionPool.js';

/**
 * The modules of a dispatcher and one {@link VersionPool} per version, built from the options
 * (names checked as lowercase host-name labels, each version spec normalized), with the typed
 * look-ups the Modules API throws from.
 */
export class ModuleRegistry {
  readonly modules = new Map<string, RoutedModule>();
  readonly pools: VersionPool[] = [];

  constructor(specs: Readonly<Record<string, ModuleSpec>>, services: PoolServices) {
    if (typeof specs !== 'object' || specs === null || Object.keys(specs).length === 0)
      throw new InvalidConfigError('modules must name at least one module');
    for (const [name, spec] of Object.entries(specs)) {
      if (!isHostLabel(name) || name !== name.toLowerCase())
        throw new InvalidConfigError(
          `module name ${JSON.stringify(name)} must be a lowercase host-name label`,
        );
      if (
        typeof spec !== 'object' ||
        spec === null ||
        typeof spec.versions !== 'object' ||
        spec.versions === null
      )
        throw new InvalidConfigError(`module ${name}: versions must be an object`);
      const versionNames = Object.keys(spec.versions);
      if (versionNames.length === 0) throw new InvalidConfigError(`module ${name} has no version`);
      const versions = new Map<string, VersionPool>();
      for (const version of versionNames) {
        if (!isHostLabel(version) || version !== version.toLowerCase())
          throw new InvalidConfigError(
            `version name ${JSON.stringify(version)} must be a lowercase host-name label`,
          );
        const normalized = normalizeVersionSpec(`${name}/${version}`, spec.versions[version]!);
        const pool = new VersionPool(name, version, normalized, services);
        versions.set(version, pool);
        this.pools.push(pool);
      }
      const defaultVersion = spec.defaultVersion ?? versionNames[0]!;
      if (!versions.has(defaultVersion))
        throw new InvalidConfigError(
          `module ${name}: default version ${JSON.stringify(defaultVersion)} does not exist`,
        );
      this.modules.set(name, { name, defaultVersion, versions });
    }
  }

  /** @throws ModuleDoesNotExistError */
  module(name: string): RoutedModule {
    const mod = typeof name === 'string' ? this.modules.get(name) : undefined;
    if (!mod) throw new ModuleDoesNotExistError(String(name));
    return mod;
  }

  /** @throws ModuleDoesNotExistError, VersionDoesNotExistError */
  versionPool(module: string, version: string): VersionPool {
    const mod = this.module(module);
    const pool = typeof version === 'string' ? mod.versions.get(version) : undefined;
    if (!pool) throw new VersionDoesNotExistError(mod.name, String(version));
    return pool;
  }

  /** A version whose instances can be controlled: not automatic scaling. */
  controllable(module: string, version: string, operation: string): VersionPool {
    const pool = this.versionPool(module, version);
    if (pool.kind === 'automatic')
      throw new NotSupportedWithAutoScalingError(module, version, operation);
    return pool;
  }

  /** `[instance.][version.]module.<baseHost>[:port]` (`port` empty or `:n`). */
  hostname(
    baseHost: string,
    port: string,
    module: string,
    version?: string,
    instance?: string,
  ): string {
    const mod = this.module(module);
    if (version === undefined) {
      if (instance !== undefined)
        throw new InvalidInstanceIdError(
          mod.name,
          mod.defaultVersion,
          instance,
          'give the version with the instance',
        );
      return `${mod.name}.${baseHost}${port}`;
    }
    const pool = this.versionPool(module, version);
    if (instance === undefined) return `${version}.${mod.name}.${baseHost}${port}`;
    if (pool.kind === 'automatic')
      throw new InvalidInstanceIdError(
        mod.name,
        version,
        String(instance),
        'instances of automatic scaling are not addressable',
      );
    if (!pool.instances.has(instance))
      throw new InvalidInstanceIdError(mod.name, version, String(instance));
    return `${instance}.${version}.${mod.name}.${baseHost}${port}`;
  }
}
