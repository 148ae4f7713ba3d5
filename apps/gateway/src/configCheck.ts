/** One problem in the configuration: the dotted path of the field and what is wrong with it. */
export interface ConfigIssue {
  readonly path: string;
  readonly message: string;
}

/** A plain object read from YAML. */
export type Fields = Readonly<Record<string, unknown>>;

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

/** Levenshtein distance, for "did you mean" hints on misspelt keys. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length]!;
}

interface NumberRule {
  readonly min?: number;
  readonly max?: number;
}

/**
 * Collects every problem of a configuration instead of stopping at the first, each named by the
 * path of its field (`modules.catalog.versions.v1.instances: expected an integer >= 1, got "x"`).
 * Readers return a fallback after recording an issue, so validation always runs to the end.
 */
export class ConfigCheck {
  readonly issues: ConfigIssue[] = [];

  fail(path: string, message: string): void {
    this.issues.push({ path, message });
  }

  /** A mapping with only `allowed` keys (unknown keys are reported, with a hint); undefined when absent. */
  object(value: unknown, path: string, allowed?: readonly string[]): Fields | undefined {
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'object' || Array.isArray(value)) {
      this.fail(path, `expected a mapping, got ${describe(value)}`);
      return undefined;
    }
    if (allowed) {
      for (const key of Object.keys(value)) {
        if (allowed.includes(key)) continue;
        const close = allowed.find(k => distance(k.toLowerCase(), key.toLowerCase()) <= 2);
        this.fail(
          join(path, key),
          `unknown field${close ? ` (did you mean "${close}"?)` : ''}; expected one of ${allowed.join(', ')}`,
        );
      }
    }
    return value as Fields;
  }

  /** Like {@link object} but required. */
  requiredObject(value: unknown, path: string, allowed?: readonly string[]): Fields {
    if (value === undefined || value === null) {
      this.fail(path, 'is required');
      return {};
    }
    return this.object(value, path, allowed) ?? {};
  }

  int(value: unknown, path: string, fallback: number, rule: NumberRule = {}): number {
    if (value === undefined) return fallback;
    const { min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER } = rule;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      this.fail(path, `expected an integer${range(rule)}, got ${describe(value)}`);
      return fallback;
    }
    return value;
  }

  number(value: unknown, path: string, fallback: number, rule: NumberRule = {}): number {
    if (value === undefined) return fallback;
    const { min = -Infinity, max = Infinity } = rule;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
      this.fail(path, `expected a number${range(rule)}, got ${describe(value)}`);
      return fallback;
    }
    return value;
  }

  string(value: unknown, path: string, fallback: string, pattern?: RegExp, hint?: string): string {
    if (value === undefined) return fallback;
    if (typeof value !== 'string' || value === '' || (pattern && !pattern.test(value))) {
      this.fail(path, `expected ${hint ?? 'a non-empty string'}, got ${describe(value)}`);
      return fallback;
    }
    return value;
  }

  optionalString(
    value: unknown,
    path: string,
    pattern?: RegExp,
    hint?: string,
  ): string | undefined {
    if (value === undefined || value === null) return undefined;
    const read = this.string(value, path, '', pattern, hint);
    return read === '' ? undefined : read;
  }

  bool(value: unknown, path: string, fallback: boolean): boolean {
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'boolean') {
      this.fail(path, `expected true or false, got ${describe(value)}`);
      return fallback;
    }
    return value;
  }

  oneOf<T extends string>(value: unknown, path: string, choices: readonly T[], fallback: T): T {
    if (value === undefined) return fallback;
    if (typeof value !== 'string' || !choices.includes(value as T)) {
      this.fail(path, `expected one of ${choices.join(', ')}, got ${describe(value)}`);
      return fallback;
    }
    return value as T;
  }

  list(value: unknown, path: string): readonly unknown[] {
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) {
      this.fail(path, `expected a list, got ${describe(value)}`);
      return [];
    }
    return value;
  }

  /** A mapping of string values (environment variables). */
  strings(value: unknown, path: string): Readonly<Record<string, string>> {
    const fields = this.object(value, path);
    if (!fields) return {};
    const out: Record<string, string> = {};
    for (const [key, v] of Object.entries(fields)) {
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean')
        out[key] = String(v);
      else this.fail(join(path, key), `expected a string, got ${describe(v)}`);
    }
    return out;
  }
}

function range({ min, max }: NumberRule): string {
  if (min !== undefined && max !== undefined) return ` from ${min} to ${max}`;
  if (min !== undefined) return ` >= ${min}`;
  if (max !== undefined) return ` <= ${max}`;
  return '';
}
