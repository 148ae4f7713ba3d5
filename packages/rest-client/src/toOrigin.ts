import { toEndpoint } from '@x/resilience';

/** Normalises `http://host:port` or `host:port` to an origin, or throws `TypeError`. */
export function toOrigin(host: string): string {
  return toEndpoint(host).origin;
}
