import { Kind, type TSchema } from '@sinclair/typebox';
import { ValueErrorType, type ValueError, type ValueErrorIterator } from '@sinclair/typebox/errors';
import { MODULE_NAME_PATTERN } from '@x/dispatcher';
import { describe, type ConfigIssue } from './configCheck.js';

/** Message-only annotations of configSchema.ts (left out of the JSON Schema). */
interface Hints {
  /** What a bad value should have been: `a redis:// or rediss:// URL`. */
  readonly expected?: string;
  /** What the keys of a mapping must be: `a lowercase host-name label (a-z, 0-9, -)`. */
  readonly expectedKey?: string;
  /** What a list or mapping holds: `module`, `URL`. */
  readonly itemName?: string;
}

type Schema = TSchema & Hints & Record<string, unknown>;

/** A JSON pointer (`/modules/web/versions`) as a config path (`modules.web.versions`, `dispatch[2]`). */
export function pointerToPath(pointer: string): string {
  let path = '';
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    path = /^\d+$/.test(key) ? `${path}[${key}]` : path === '' ? key : `${path}.${key}`;
  }
  return path;
}

/**
 * One {@link ConfigIssue} per bad field of a TypeBox validation (the first error of each path),
 * each naming the field, the expected and the received value:
 * `server.port: expected an integer from 0 to 65535, got "abc"`; unknown keys list the allowed
 * ones with a "did you mean" hint.
 */
export function schemaIssues(errors: Iterable<ValueError>): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const seen = new Set<string>();
  collect(errors, issues, seen);
  return issues;
}

function collect(errors: Iterable<ValueError>, issues: ConfigIssue[], seen: Set<string>): void {
  for (const error of errors) {
    const path = pointerToPath(error.path);
    if (seen.has(path)) continue;
    if (error.type === ValueErrorType.Union) {
      const variant = matchingVariant(error);
      if (variant !== undefined) {
        collect(variant, issues, seen);
        continue;
      }
    }
    seen.add(path);
    issues.push({ path, message: messageOf(error) });
  }
}

/** The errors of the one union member the value was meant to be (`healthCheck: {…}` → the mapping's). */
function matchingVariant(error: ValueError): ValueErrorIterator | undefined {
  const schema = error.schema as Schema;
  if (schema.expected !== undefined) return undefined;
  const variants = (schema.anyOf ?? []) as Schema[];
  const kind = kindOfValue(error.value);
  let matches = variants.flatMap((v, i) => (kindOfSchema(v) === kind ? [i] : []));
  // `token: 5` against a string-or-null: the error is the string's.
  if (matches.length === 0) matches = variants.flatMap((v, i) => (v[Kind] === 'Null' ? [] : [i]));
  if (matches.length !== 1 || variants[matches[0]!]![Kind] === 'Literal') return undefined;
  return error.errors[matches[0]!];
}

function kindOfValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

function kindOfSchema(schema: Schema): string {
  switch (schema[Kind]) {
    case 'Object':
    case 'Record':
      return 'object';
    case 'Array':
      return 'array';
    case 'Integer':
      return 'number';
    case 'Null':
      return 'null';
    case 'Literal':
      return typeof schema.const;
    default:
      return String(schema.type);
  }
}

/** How a schema is named in "expected …". */
function expectation(schema: Schema): string {
  if (schema.expected !== undefined) return schema.expected;
  switch (schema[Kind]) {
    case 'Integer':
    case 'Number':
      return `${schema[Kind] === 'Integer' ? 'an integer' : 'a number'}${range(schema)}`;
    case 'String':
      if (schema.pattern === MODULE_NAME_PATTERN)
        return 'a lowercase host-name label (a-z, 0-9, -)';
      if (typeof schema.maxLength === 'number')
        return `a non-empty string of at most ${schema.maxLength} characters`;
      return 'a non-empty string';
    case 'Boolean':
      return 'true or false';
    case 'Object':
    case 'Record':
      return 'a mapping';
    case 'Array':
      return 'a list';
    case 'Null':
      return 'null';
    case 'Literal':
      return `one of ${String(schema.const)}`;
    case 'Union': {
      const variants = (schema.anyOf ?? []) as Schema[];
      if (variants.every(v => v[Kind] === 'Literal'))
        return `one of ${variants.map(v => String(v.const)).join(', ')}`;
      return variants
        .map(v => (v[Kind] === 'Literal' ? String(v.const) : expectation(v)))
        .join(' or ');
    }
    default:
      return String(schema.type ?? 'a valid value');
  }
}

function range(schema: Schema): string {
  const { minimum: min, maximum: max } = schema as { minimum?: number; maximum?: number };
  if (min !== undefined && max !== undefined) return ` from ${min} to ${max}`;
  if (min !== undefined) return ` >= ${min}`;
  if (max !== undefined) return ` <= ${max}`;
  return '';
}

function messageOf(error: ValueError): string {
  const schema = error.schema as Schema;
  switch (error.type) {
    case ValueErrorType.ObjectRequiredProperty:
      return 'is required';
    case ValueErrorType.ObjectAdditionalProperties: {
      if (schema[Kind] === 'Record')
        return `${schema.itemName ?? 'key'} names must be ${schema.expectedKey ?? 'valid'}`;
      const key = error.path
        .slice(error.path.lastIndexOf('/') + 1)
        .replace(/~1/g, '/')
        .replace(/~0/g, '~');
      const allowed = Object.keys((schema.properties ?? {}) as object);
      const close = allowed.find(k => distance(k.toLowerCase(), key.toLowerCase()) <= 2);
      return `unknown field${close ? ` (did you mean "${close}"?)` : ''}; expected one of ${allowed.join(', ')}`;
    }
    case ValueErrorType.ObjectMinProperties:
      return `define at least one ${schema.itemName ?? 'entry'}`;
    case ValueErrorType.ArrayMinItems:
      return `expected at least one ${schema.itemName ?? 'item'}`;
    default:
      return `expected ${expectation(schema)}, got ${describe(error.value)}`;
  }
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
