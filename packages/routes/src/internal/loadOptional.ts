import { OptionalDependencyError } from '../errors.js';

/**
 * Imports an optional peer dependency at run time (never at load time, so the package works
 * without it), turning "module not found" into a typed `OPTIONAL_DEPENDENCY_MISSING`.
 */
export async function loadOptional<T>(specifier: string, dependency: string): Promise<T> {
  try {
    return (await import(specifier)) as T;
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND')
      throw new OptionalDependencyError(dependency, { cause: error });
    throw error;
  }
}
