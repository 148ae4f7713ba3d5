import { Kind, type TSchema } from '@sinclair/typebox';

// Walks over a configuration value along its TypeBox schema: YAML nulls, schema defaults, and
// dropping a bad field so that the checks after the schema can still run.

/**
 * YAML's empty value (`dashboard:`, `dispatch:`) means "absent" for mappings, lists and
 * booleans: such `null`s are dropped (on copies), unless the schema accepts null there.
 */
export function withoutNulls(schema: TSchema, value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  const kind = schema[Kind] as string;
  const isList = Array.isArray(value);
  if (kind === 'Union') {
    const variant = (schema.anyOf as TSchema[]).find(s =>
      isList ? s[Kind] === 'Array' : s[Kind] === 'Object' || s[Kind] === 'Record',
    );
    return variant ? withoutNulls(variant, value) : value;
  }
  if (kind === 'Array' && isList)
    return value.map(item => withoutNulls(schema.items as TSchema, item));
  if ((kind !== 'Object' && kind !== 'Record') || isList) return value;
  const properties = (schema.properties ?? {}) as Record<string, TSchema>;
  const pattern = Object.values((schema.patternProperties ?? {}) as Record<string, TSchema>)[0];
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    const property =
      kind === 'Record' ? pattern : Object.hasOwn(properties, key) ? properties[key] : undefined;
    if (item === null && property && absentWhenNull(property)) continue;
    define(out, key, property ? withoutNulls(property, item) : item);
  }
  return out;
}

function absentWhenNull(schema: TSchema): boolean {
  return ['Object', 'Record', 'Array', 'Boolean'].includes(schema[Kind] as string);
}

/** `target[key] = value`, also for a key named `__proto__`. */
export function define(target: object, key: string, value: unknown): void {
  Object.defineProperty(target, key, {
    value,
    writable: true,
    enumerable: true,
    configurable: true,
  });
}

/**
 * `value` without the field at JSON `pointer` (copies along the path); undefined when that
 * cannot be done (the root, or a list item).
 */
export function without(value: unknown, pointer: string): unknown {
  const keys = pointer
    .split('/')
    .slice(1)
    .map(k => k.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (keys.length === 0) return undefined;
  const drop = (node: unknown, [key, ...rest]: string[]): unknown => {
    if (typeof node !== 'object' || node === null || key === undefined) return undefined;
    if (Array.isArray(node)) {
      if (rest.length === 0) return undefined;
      const copy = [...(node as unknown[])];
      const child = drop(copy[Number(key)], rest);
      if (child === undefined) return undefined;
      copy[Number(key)] = child;
      return copy;
    }
    const copy: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) define(copy, k, v);
    if (rest.length === 0) {
      delete copy[key];
      return copy;
    }
    if (!Object.hasOwn(copy, key)) return copy;
    const child = drop(copy[key], rest);
    if (child === undefined) return undefined;
    define(copy, key, child);
    return copy;
  };
  return drop(value, keys);
}

/**
 * Fills in the schema's `default`s where a field is absent, in place (`value` is a copy made by
 * {@link withoutNulls}); a cheaper walk than TypeBox's `Value.Default` for a value that already
 * passed the schema check.
 */
export function withDefaults(schema: TSchema, value: unknown): unknown {
  const kind = schema[Kind] as string;
  if (value === undefined && 'default' in schema) value = structuredClone(schema.default);
  if (kind === 'Union') {
    if (value !== undefined && (typeof value !== 'object' || value === null)) return value;
    const variant = (schema.anyOf as TSchema[]).find(s =>
      Array.isArray(value) ? s[Kind] === 'Array' : s[Kind] === 'Object' || s[Kind] === 'Record',
    );
    return variant ? withDefaults(variant, value) : value;
  }
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    if (kind === 'Array')
      value.forEach((item, i) => (value[i] = withDefaults(schema.items as TSchema, item)));
    return value;
  }
  const fields = value as Record<string, unknown>;
  if (kind === 'Object')
    for (const [key, property] of Object.entries(schema.properties as Record<string, TSchema>)) {
      const filled = withDefaults(property, fields[key]);
      if (filled !== undefined) define(fields, key, filled);
    }
  if (kind === 'Record') {
    const pattern = Object.values(schema.patternProperties as Record<string, TSchema>)[0]!;
    for (const key of Object.keys(fields)) define(fields, key, withDefaults(pattern, fields[key]));
  }
  return value;
}
