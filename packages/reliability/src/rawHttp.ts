import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** What a server sent back on one raw connection. */
export interface RawExchange {
  /** Every byte received, as latin1 text. */
  readonly text: string;
  /** Status codes of the response heads found in `text`, in order. */
  readonly statuses: readonly number[];
  /** True when the server ended or reset the connection before `timeoutMs`. */
  readonly closed: boolean;
  /** Milliseconds from the connection until it closed (or until the timeout). */
  readonly elapsedMs: number;
  /** The local address of the connection (what the server sees as the peer). */
  readonly localAddress: string;
}

/** Options of {@link rawExchange}. */
export interface RawExchangeOptions {
  /** Give up waiting for the server to close this long after the connection opened. Default 5 000. */
  readonly timeoutMs?: number;
  /** Local address to connect from (a non-loopback address makes an "untrusted peer"). */
  readonly localAddress?: string;
  /** Resolve as soon as this many responses arrived whole (head, and body per Content-Length). */
  readonly responses?: number;
}

/**
 * Sends bytes on a fresh TCP connection, exactly as given (no HTTP client sanitises them), and
 * collects what comes back until the server closes the connection or `timeoutMs` passes. A number
 * in `parts` pauses that many milliseconds (slow clients); sending stops once the server closed.
 */
export async function rawExchange(
  url: string,
  parts: ReadonlyArray<string | Buffer | number>,
  options: RawExchangeOptions = {},
): Promise<RawExchange> {
  const { hostname, port } = new URL(url);
  const timeoutMs = options.timeoutMs ?? 5_000;
  const started = performance.now();
  const socket: Socket = connect({
    host: hostname.replace(/^\[|\]$/g, ''),
    port: Number(port),
    ...(options.localAddress ? { localAddress: options.localAddress } : {}),
  });
  const chunks: Buffer[] = [];
  let closed = false;
  let closedAt = 0;
  let wake: (() => void) | undefined;
  const statuses = () => [
    ...Buffer.concat(chunks)
      .toString('latin1')
      .matchAll(/HTTP\/1\.[01] (\d{3})/g),
  ];
  const enough = () =>
    options.responses !== undefined &&
    completeResponses(Buffer.concat(chunks).toString('latin1')) >= options.responses;
  socket.on('data', chunk => {
    chunks.push(chunk);
    if (enough()) wake?.();
  });
  socket.on('error', () => {}); // a reset counts as closed
  socket.on('close', () => {
    closed = true;
    closedAt = performance.now();
    wake?.();
  });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const localAddress = socket.localAddress ?? '';
    for (const part of parts) {
      if (closed || socket.destroyed) break;
      if (typeof part === 'number') await sleep(part);
      else socket.write(part);
    }
    const left = timeoutMs - (performance.now() - started);
    if (!closed && left > 0 && !enough()) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>(resolve => {
        wake = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
    const text = Buffer.concat(chunks).toString('latin1');
    return {
      text,
      statuses: statuses().map(m => Number(m[1])),
      closed,
      elapsedMs: Math.round((closed ? closedAt : performance.now()) - started),
      localAddress,
    };
  } finally {
    socket.destroy();
  }
}

/** How many responses in `text` are whole: head, then as many body bytes as Content-Length says. */
function completeResponses(text: string): number {
  let count = 0;
  for (let at = 0; ; count++) {
    const head = text.indexOf('\r\n\r\n', at);
    if (head < 0) return count;
    const length = /\r\ncontent-length: *(\d+)/i.exec(text.slice(at, head))?.[1];
    at = head + 4 + Number(length ?? 0);
    if (at > text.length) return count;
  }
}
