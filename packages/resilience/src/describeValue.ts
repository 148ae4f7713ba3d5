/**
 * A short, safe rendering of a received value for an error message: numbers as they are, strings
 * JSON-quoted (cut at 60 characters), booleans and bigints with their type, other values by their
 * kind (`an object`, `an array`, `null`). Never throws: no `toString` of user objects is called.
 */
export function describeValue(value: unknown): string {
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string')
    return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
  if (typeof value === 'boolean' || typeof value === 'bigint')
    return `${String(value)} (a ${typeof value})`;
  if (value === null || value === undefined) return String(value);
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}
