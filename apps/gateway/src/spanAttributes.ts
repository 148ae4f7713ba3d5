import type { SpanValue } from './traceStore.js';

/** Attributes kept per span or event; the rest are left out. */
export const MAX_ATTRIBUTES = 32;
/** Longest string value kept (longer ones are cut, with `…`). */
export const MAX_VALUE_CHARS = 256;

/**
 * Span attributes as the trace store keeps them: at most {@link MAX_ATTRIBUTES}, strings cut to
 * {@link MAX_VALUE_CHARS}, arrays to 16 items, anything that is not a string, number or boolean
 * (or an array of them) left out. The store's memory bound rests on this.
 */
export function boundedAttributes(
  entries: Iterable<readonly [string, unknown]>,
): Record<string, SpanValue> {
  const out: Record<string, SpanValue> = {};
  let n = 0;
  for (const [key, raw] of entries) {
    if (n >= MAX_ATTRIBUTES) break;
    const value = Array.isArray(raw)
      ? raw
          .slice(0, 16)
          .map(scalar)
          .filter(v => v !== undefined)
      : scalar(raw);
    if (value === undefined) continue;
    out[key.slice(0, 128)] = value;
    n++;
  }
  return out;
}

function scalar(value: unknown): string | number | boolean | undefined {
  if (typeof value === 'string')
    return value.length > MAX_VALUE_CHARS ? `${value.slice(0, MAX_VALUE_CHARS)}…` : value;
  if (typeof value === 'number' || typeof value === 'boolean') return value;
  if (typeof value === 'bigint') return Number(value);
  return undefined;
}
