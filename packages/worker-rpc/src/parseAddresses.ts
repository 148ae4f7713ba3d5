/** Whether an address looks like an HTTP URL (the `http` transport's). */
export function isHttpAddress(address: string): boolean {
  return /^https?:\/\//i.test(address);
}

/** Splits a comma-separated address string (or trims a list); drops empties and duplicates. */
export function parseAddresses(addresses: string | readonly string[] | undefined): string[] {
  if (addresses === undefined) return [];
  const list = typeof addresses === 'string' ? addresses.split(',') : [...addresses];
  const out: string[] = [];
  for (const raw of list) {
    if (typeof raw !== 'string') throw new TypeError('addresses must be strings');
    const a = raw.trim();
    if (a && !out.includes(a)) out.push(a);
  }
  return out;
}
