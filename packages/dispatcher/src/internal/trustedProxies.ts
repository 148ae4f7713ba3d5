import { BlockList, isIP } from 'node:net';
import { InvalidConfigError } from '../errors.js';

/**
 * Which peers may set `X-Forwarded-For` / `-Proto` / `X-Request-Id`: exact addresses, CIDR
 * ranges (`10.0.0.0/8`, `fd00::/8`) and `'loopback'`. Empty: nobody.
 */
export class TrustedProxies {
  private readonly list = new BlockList();
  readonly empty: boolean;

  constructor(entries: readonly string[]) {
    if (!Array.isArray(entries)) throw new InvalidConfigError('trustedProxies must be a list');
    this.empty = entries.length === 0;
    for (const entry of entries) {
      if (entry === 'loopback') {
        this.list.addSubnet('127.0.0.0', 8, 'ipv4');
        this.list.addAddress('::1', 'ipv6');
        continue;
      }
      if (typeof entry !== 'string')
        throw new InvalidConfigError('trustedProxies entries must be strings');
      const slash = entry.indexOf('/');
      const address = slash < 0 ? entry : entry.slice(0, slash);
      const family = isIP(address);
      if (family === 0)
        throw new InvalidConfigError(`trustedProxies: bad address ${JSON.stringify(entry)}`);
      const type = family === 4 ? 'ipv4' : 'ipv6';
      if (slash < 0) {
        this.list.addAddress(address, type);
      } else {
        const prefix = Number(entry.slice(slash + 1));
        if (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128))
          throw new InvalidConfigError(`trustedProxies: bad prefix in ${JSON.stringify(entry)}`);
        this.list.addSubnet(address, prefix, type);
      }
    }
  }

  /** True when `address` (as `socket.remoteAddress` gives it) is trusted. */
  has(address: string | undefined): boolean {
    if (this.empty || !address) return false;
    const plain = unmap(address);
    const family = isIP(plain);
    if (family === 0) return false;
    return this.list.check(plain, family === 4 ? 'ipv4' : 'ipv6');
  }

  /**
   * The client address behind a trusted peer: the right-most `X-Forwarded-For` entry that is not
   * itself trusted (the left-most when all are).
   */
  clientIp(remote: string, forwardedFor: string | undefined): string {
    const plain = unmap(remote);
    if (!forwardedFor || !this.has(plain)) return plain;
    const hops = forwardedFor.split(',');
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hops[i]!.trim();
      if (isIP(hop) === 0) return plain;
      if (!this.has(hop)) return hop;
    }
    return hops[0]!.trim();
  }
}

/** `::ffff:1.2.3.4` → `1.2.3.4`. */
export function unmap(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
