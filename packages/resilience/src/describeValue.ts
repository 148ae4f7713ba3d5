/**
 * A short, safe rendering of a received value for an error message: numbers as they are, strings
 * quoted (cut at 60 characters) and marked as strings, other types by their kind. Never throws
 * (no `toString` of user objects is called).
 */
export function describeValue(value: unknown): string {
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string')
    return `${JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value)} (a string)`;
  if (typeof value === 'boolean' || typeof value === 'bigint')
    return `${String(value)} (a ${typeof value})`;
  if (value === null || value === undefined) return String(value);
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}
