/** One problem in the configuration: the dotted path of the field and what is wrong with it. */
export interface ConfigIssue {
  readonly path: string;
  readonly message: string;
}

/** How a value is shown in an error message: strings quoted, objects as JSON, short. */
export function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  return String(value);
}

/** `a.b` + `c` → `a.b.c`; list indexes become `a[2]`. */
export function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path === '' ? key : `${path}.${key}`;
}

/**
 * Collects the problems of a configuration that a schema cannot express (a module that does not
 * exist, cross-field rules), each named by the path of its field, after the schema check
 * (configSchemaIssues.ts) so that one run reports every bad field.
 */
export class ConfigCheck {
  readonly issues: ConfigIssue[] = [];

  fail(path: string, message: string): void {
    this.issues.push({ path, message });
  }
}
