const UNITS: Record<string, number> = {
  '': 1000,
  s: 1000,
  ms: 1,
  us: 0.001,
  µs: 0.001,
  ns: 0.000001,
};

/**
 * Parses an `x-response-time` header into milliseconds: a bare number is seconds (lupyne's
 * servers wrote `time.time() - start`), otherwise the unit decides (`ms`, `s`, `us`, `µs`, `ns`).
 * NaN for a missing or malformed value.
 */
export function parseResponseTime(value: string | string[] | undefined): number {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined) return Number.NaN;
  const match = /^\s*(\d+(?:\.\d*)?|\.\d+)(?:e([+-]?\d+))?\s*(ms|s|us|µs|ns)?\s*$/i.exec(text);
  if (!match) return Number.NaN;
  const number = Number(`${match[1]}${match[2] === undefined ? '' : `e${match[2]}`}`);
  return number * UNITS[(match[3] ?? '').toLowerCase()]!;
}
