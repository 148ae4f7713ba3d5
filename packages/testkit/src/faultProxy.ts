import { connect, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';

/**
 * Behaviour of a {@link FaultProxy}:
 * - `pass`: forward bytes both ways (plus `latencyMs` per chunk and direction);
 * - `reset`: accept, then reset the client socket at once; switching to it resets open connections;
 * - `blackhole`: accept and read but never forward nor answer; open connections stop forwarding;
 * - `refuse`: close the listening socket so connects get ECONNREFUSED (open connections are reset, like a
 *   crashed host); switching to another mode listens again on the same port.
 */
export type FaultMode = 'pass' | 'reset' | 'blackhole' | 'refuse';

/** Options of {@link startFaultProxy}. */
export interface FaultProxyOptions {
  /** Where `pass` forwards to: `{ host, port }` or a URL such as `http://127.0.0.1:8080`. */
  target: { host: string; port: number } | string;
  /** Initial mode. Default `pass`. */
  mode?: FaultMode;
  /** Delay added to each chunk in each direction, in milliseconds. Default 0. */
  latencyMs?: number;
  /** Interface to bind. Default `127.0.0.1`. */
  host?: string;
}

/** A fault-injecting TCP proxy on loopback for chaos tests. */
export interface FaultProxy {
  /** `http://host:port` of the proxy (the proxy itself is plain TCP). */
  readonly url: string;
  /** Bound host. */
  readonly host: string;
  /** Bound port; stays the same across `refuse` and back. */
  readonly port: number;
  /** Current mode; settable at runtime (see {@link FaultMode}). Use {@link FaultProxy.setMode} to await re-listening. */
  mode: FaultMode;
  /** Delay added to each chunk in each direction; settable at runtime, applies to chunks received afterwards. */
  latencyMs: number;
  /** Open client connections. */
  readonly connections: number;
  /** Client connections ever accepted. */
  readonly totalConnections: number;
  /** Sets the mode and resolves once the listening socket matches it (closed for `refuse`, listening otherwise). */
  setMode(mode: FaultMode): Promise<void>;
  /** Resets every open connection now. */
  resetAll(): void;
  /** Stops listening and destroys every connection and pending timer. Idempotent. */
  close(): Promise<void>;
  /** Same as {@link FaultProxy.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

const MODES: readonly FaultMode[] = ['pass', 'reset', 'blackhole', 'refuse'];

function parseTarget(target: FaultProxyOptions['target']): { host: string; port: number } {
  if (typeof target !== 'string') return target;
  const url = new URL(target);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = url.port
    ? Number(url.port)
    : url.protocol === 'https:' || url.protocol === 'wss:'
      ? 443
      : 80;
  return { host, port };
}

function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

function reset(socket: Socket): void {
  if (socket.destroyed) return;
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}

/** Forwards chunks from one socket to another, each delayed by the latency current at receipt, in order. */
class DelayedPipe {
  private readonly queue: { due: number; chunk: Buffer }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private ending = false;
  private ended = false;
  private waitingForDrain = false;

  constructor(
    private readonly from: Socket,
    private readonly to: Socket,
    private readonly forwarding: () => boolean,
    private readonly latency: () => number,
  ) {}

  push(chunk: Buffer): void {
    if (!this.forwarding()) return;
    const delay = this.latency();
    if (delay <= 0 && this.queue.length === 0) {
      this.write(chunk);
      return;
    }
    const last = this.queue[this.queue.length - 1];
    this.queue.push({ due: Math.max(Date.now() + delay, last?.due ?? 0), chunk });
    this.schedule();
  }

  /** Ends the destination once every queued chunk has been written (only while forwarding). */
  end(): void {
    this.ending = true;
    if (this.queue.length === 0) this.finish();
  }

  /** Drops queued chunks and clears the timer. */
  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
  }

  private schedule(): void {
    if (this.timer || this.queue.length === 0) return;
    const wait = Math.max(0, (this.queue[0]?.due ?? 0) - Date.now());
    this.timer = setTimeout(() => this.flush(), wait);
  }

  private flush(): void {
    this.timer = undefined;
    const now = Date.now();
    while (this.queue.length > 0 && (this.queue[0]?.due ?? 0) <= now) {
      const item = this.queue.shift();
      if (item && this.forwarding()) this.write(item.chunk);
    }
    if (this.queue.length > 0) this.schedule();
    else if (this.ending) this.finish();
  }

  private write(chunk: Buffer): void {
    if (this.to.destroyed || this.to.writableEnded) return;
    if (!this.to.write(chunk) && !this.waitingForDrain) {
      this.waitingForDrain = true;
      this.from.pause();
      this.to.once('drain', () => {
        this.waitingForDrain = false;
        this.from.resume();
      });
    }
  }

  private finish(): void {
    if (this.ended || !this.forwarding()) return;
    this.ended = true;
    if (!this.to.destroyed && !this.to.writableEnded) this.to.end();
  }
}

/** One accepted client connection and, when accepted in `pass`, its upstream connection. */
class ProxyConnection {
  private upstream: Socket | undefined;
  private readonly pipes: DelayedPipe[] = [];

  constructor(
    private readonly client: Socket,
    private readonly proxy: FaultProxyImpl,
    onClosed: (conn: ProxyConnection) => void,
  ) {
    client.on('error', () => this.reset());
    client.once('close', () => {
      this.upstream?.destroy();
      for (const pipe of this.pipes) pipe.dispose();
      onClosed(this);
    });
  }

  /** Reads and drops everything from the client; never answers. */
  blackhole(): void {
    // A client that gives up (FIN) is let go so `connections` tracks live clients.
    this.client.once('end', () => this.client.destroy());
    this.client.resume();
  }

  /** Connects upstream and forwards both ways while the proxy is in `pass`. */
  pass(target: { host: string; port: number }): void {
    const client = this.client;
    const upstream = connect({ host: target.host, port: target.port, allowHalfOpen: true });
    this.upstream = upstream;
    const forwarding = (): boolean => this.proxy.mode === 'pass';
    const latency = (): number => this.proxy.latencyMs;
    const toUpstream = new DelayedPipe(client, upstream, forwarding, latency);
    const toClient = new DelayedPipe(upstream, client, forwarding, latency);
    this.pipes.push(toUpstream, toClient);
    client.on('data', (chunk: Buffer) => toUpstream.push(chunk));
    upstream.on('data', (chunk: Buffer) => toClient.push(chunk));
    client.once('end', () => {
      if (forwarding()) toUpstream.end();
      else this.destroy();
    });
    upstream.once('end', () => toClient.end());
    upstream.on('error', () => {
      // Propagate an upstream failure (refused, reset) as a reset, unless blackholed.
      if (forwarding()) reset(client);
    });
  }

  /** Resets both sides. */
  reset(): void {
    reset(this.client);
    if (this.upstream) reset(this.upstream);
  }

  private destroy(): void {
    this.client.destroy();
    this.upstream?.destroy();
  }
}

class FaultProxyImpl implements FaultProxy {
  readonly host: string;
  latencyMs: number;
  private currentMode: FaultMode;
  private readonly target: { host: string; port: number };
  private readonly open = new Set<ProxyConnection>();
  private server: Server | undefined;
  private boundPort = 0;
  private connectionCounter = 0;
  private transition: Promise<void> = Promise.resolve();
  private closing: Promise<void> | undefined;

  constructor(options: FaultProxyOptions) {
    this.host = options.host ?? '127.0.0.1';
    this.target = parseTarget(options.target);
    this.currentMode = options.mode ?? 'pass';
    this.latencyMs = options.latencyMs ?? 0;
    if (!MODES.includes(this.currentMode))
      throw new TypeError(`Unknown fault mode: ${String(this.currentMode)}`);
  }

  get url(): string {
    return `http://${hostForUrl(this.host)}:${this.boundPort}`;
  }

  get port(): number {
    return this.boundPort;
  }

  get connections(): number {
    return this.open.size;
  }

  get totalConnections(): number {
    return this.connectionCounter;
  }

  get mode(): FaultMode {
    return this.currentMode;
  }

  set mode(mode: FaultMode) {
    // Errors re-listening surface through setMode(); a setter cannot report them.
    this.setMode(mode).catch(() => {});
  }

  setMode(mode: FaultMode): Promise<void> {
    if (!MODES.includes(mode))
      return Promise.reject(new TypeError(`Unknown fault mode: ${String(mode)}`));
    if (this.closing) return Promise.reject(new Error('FaultProxy is closed'));
    this.currentMode = mode;
    if (mode === 'reset' || mode === 'refuse') this.resetAll();
    if (mode === 'refuse') this.stopListening();
    const next = this.transition.then(() => this.reconcile());
    this.transition = next.catch(() => {});
    return next;
  }

  resetAll(): void {
    for (const conn of [...this.open]) conn.reset();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.transition;
      const server = this.server;
      this.server = undefined;
      this.resetAll();
      if (server) await new Promise<void>(resolve => server.close(() => resolve()));
    })();
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Starts listening (first on port 0, then on the same port again). */
  async listen(): Promise<void> {
    const server = createServer({ allowHalfOpen: true }, socket => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      server.once('error', onError);
      server.listen(this.boundPort, this.host, () => {
        server.off('error', onError);
        resolve();
      });
    });
    const address = server.address();
    if (typeof address === 'object' && address !== null) this.boundPort = address.port;
    this.server = server;
  }

  private async reconcile(): Promise<void> {
    if (this.closing) return;
    if (this.currentMode === 'refuse') this.stopListening();
    else if (!this.server) await this.listen();
  }

  private stopListening(): void {
    const server = this.server;
    this.server = undefined;
    // Open connections are tracked by the proxy itself; the listening handle closes at once.
    server?.close();
  }

  private accept(socket: Socket): void {
    this.connectionCounter++;
    const mode = this.currentMode;
    if (this.closing || mode === 'reset' || mode === 'refuse') {
      socket.on('error', () => {});
      reset(socket);
      return;
    }
    const conn = new ProxyConnection(socket, this, c => this.open.delete(c));
    this.open.add(conn);
    if (mode === 'blackhole') conn.blackhole();
    else conn.pass(this.target);
  }
}

/** Starts a fault-injecting TCP proxy to `target` on 127.0.0.1, port 0. */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const proxy = new FaultProxyImpl(options);
  if (proxy.mode === 'refuse') {
    // Reserve a port, then release it so connects are refused until the mode changes.
    await proxy.listen();
    await proxy.setMode('refuse');
  } else {
    await proxy.listen();
  }
  return proxy;
}
