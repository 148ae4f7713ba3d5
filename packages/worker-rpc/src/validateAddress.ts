import { describeValue } from '@x/resilience';
import { WorkerRpcError } from './errors.js';

/** Which transport an address is for, and whether it is connected to or bound. */
export type AddressUse = 'zmq-connect' | 'zmq-bind' | 'http-connect';

const EXPECTED: Record<AddressUse, string> = {
  'zmq-connect': 'tcp://host:port (port 1-65535), ipc://path or inproc://name',
  'zmq-bind': 'tcp://interface:port (port 0-65535 or *), ipc://path or inproc://name',
  'http-connect': 'http(s)://host[:port][/path] (port 1-65535)',
};

/** A host name, an IPv4 address, `*` (bind only) or a bracketed IPv6 address. */
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+(?:%[\w.-]+)?\])$/;
const PORT = /^[0-9]{1,5}$/;

/**
 * Checks a worker address at once, so a malformed one fails with `INVALID_ARGUMENT` naming it
 * instead of every call timing out later: `tcp://host:port`, `ipc://path` and `inproc://name`
 * for ZeroMQ (binding also takes `*` as interface or port, and port 0), `http(s)://host[:port]`
 * with an optional base path for HTTP. Returns the trimmed address.
 *
 * @example
 * validateAddress('tcp://127.0.0.1', 'zmq-connect'); // throws INVALID_ARGUMENT (no port)
 */
export function validateAddress(address: unknown, use: AddressUse, field = 'address'): string {
  const a = typeof address === 'string' ? address.trim() : undefined;
  if (a !== undefined && (use === 'http-connect' ? validHttp(a) : validZmq(a, use === 'zmq-bind')))
    return a;
  throw new WorkerRpcError(
    'INVALID_ARGUMENT',
    `${field}: expected ${EXPECTED[use]}, received ${describeValue(address)}`,
  );
}

function validZmq(address: string, bind: boolean): boolean {
  const match = /^(tcp|ipc|inproc):\/\/(.+)$/i.exec(address);
  if (!match) return false;
  const [, scheme, rest] = match;
  if (scheme!.toLowerCase() !== 'tcp') return !/[\0\s]/.test(rest!);
  const colon = rest!.lastIndexOf(':');
  if (colon <= 0) return false;
  const host = rest!.slice(0, colon);
  const port = rest!.slice(colon + 1);
  if (!(HOST.test(host) || (bind && host === '*'))) return false;
  if (bind && port === '*') return true;
  return PORT.test(port) && Number(port) <= 65_535 && (bind || Number(port) >= 1);
}

function validHttp(address: string): boolean {
  if (!/^https?:\/\/[^\s]/i.test(address) || /\s/.test(address)) return false;
  let url: URL;
  try {
    url = new URL(address);
  } catch {
    return false;
  }
  return url.hostname !== '' && url.port !== '0';
}
