import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (value: string | Uint8Array): Buffer => createHash('sha256').update(value).digest();

/**
 * True when `given` equals `expected` (a token, a password), compared in constant time: both are
 * hashed with SHA-256 first, so neither the content nor the length of the secret leaks through
 * timing. The one token comparison of every `@x` package (admin APIs, worker auth, dashboard).
 */
export function secretMatches(
  given: string | Uint8Array | undefined,
  expected: string | Uint8Array,
): boolean {
  if (given === undefined) return false;
  return timingSafeEqual(digest(given), digest(expected));
}
