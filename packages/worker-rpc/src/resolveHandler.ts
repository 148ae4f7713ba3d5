/** A handler found by {@link resolveHandler}: the function and the object it is called on. */
export interface ResolvedHandler {
  readonly fn: (params: unknown, context: any) => unknown;
  readonly self: unknown;
}

/** Names never resolved as handler path segments, even when defined. */
const FORBIDDEN = new Set([
  '__proto__',
  'constructor',
  'prototype',
  '__defineGetter__',
  '__defineSetter__',
  '__lookupGetter__',
  '__lookupSetter__',
]);

/**
 * Looks up a dotted method on own enumerable-or-not data properties only: inherited members
 * (`toString`, `hasOwnProperty`, ...), `__proto__`, `constructor`, `prototype`, getters and empty
 * segments all resolve to undefined (NOT_FOUND).
 */
export function resolveHandler(tree: unknown, method: string): ResolvedHandler | undefined {
  if (typeof method !== 'string' || method.length === 0 || method.length > 512) return undefined;
  const parts = method.split('.');
  if (parts.length > 32) return undefined;
  let node: unknown = tree;
  let parent: unknown = undefined;
  for (const part of parts) {
    if (part.length === 0 || FORBIDDEN.has(part)) return undefined;
    if (node === null || (typeof node !== 'object' && typeof node !== 'function')) return undefined;
    const descriptor = Object.getOwnPropertyDescriptor(node, part);
    if (descriptor === undefined || !('value' in descriptor)) return undefined;
    parent = node;
    node = descriptor.value;
  }
  return typeof node === 'function'
    ? { fn: node as ResolvedHandler['fn'], self: parent }
    : undefined;
}

/** The first segment of a dotted method name that does not resolve (toto's AttributeError name). */
export function missingSegment(tree: unknown, method: string): string {
  const parts = method.split('.');
  for (let i = 1; i <= parts.length; i++) {
    const prefix = parts.slice(0, i).join('.');
    const node = i === parts.length ? resolveHandler(tree, prefix) : resolveNode(tree, prefix);
    if (node === undefined) return parts[i - 1]!;
  }
  return parts[parts.length - 1]!;
}

function resolveNode(tree: unknown, path: string): unknown {
  let node = tree;
  for (const part of path.split('.')) {
    if (part.length === 0 || FORBIDDEN.has(part)) return undefined;
    if (node === null || (typeof node !== 'object' && typeof node !== 'function')) return undefined;
    const descriptor = Object.getOwnPropertyDescriptor(node, part);
    if (descriptor === undefined || !('value' in descriptor)) return undefined;
    node = descriptor.value;
  }
  return node;
}
