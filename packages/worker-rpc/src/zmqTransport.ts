import { timerOptions } from './internal/durationOption.js';
import { validateAddress } from './validateAddress.js';
import { WorkerRpcError, isWorkerRpcError } from './errors.js';
import { RequestHeaderEncoder } from './internal/headerCache.js';
import { idToUuid, uuidToId } from './internal/ids.js';
import { loadZmq, type Zmq } from './internal/loadZmq.js';
import { receiveLoop } from './internal/receiveLoop.js';
import { BATCH_ALLOWANCE_BYTES, SendQueue, readPairs } from './internal/sendQueue.js';
import { FLAG_COMPRESSED, Kind, decodeHeader, encodeHeader, type KindValue } from './protocol.js';
import type {
  Channel,
  ChannelContext,
  ChannelEvents,
  OutgoingRequest,
  Transport,
} from './transport.js';

/** CURVE settings of a ZeroMQ client: the worker's public key, and optionally our own key pair. */
export interface ZmqClientCurve {
  /** Z85 public key of the worker/broker (its `curve.secretKey` pair). */
  readonly serverKey: string;
  /** Our Z85 key pair; generated per socket when omitted. */
  readonly publicKey?: string;
  readonly secretKey?: string;
}

/** Options of {@link zmqTransport}. */
export interface ZmqTransportOptions {
  /** `wrpc/1` (default) or `toto` (toto's `['', id, body]` frames, for existing toto workers). */
  readonly protocol?: 'wrpc/1' | 'wrpc' | 'toto';
  /** Messages waiting per endpoint socket before sends fail with OVERLOADED. Default 10 000. */
  readonly sendQueue?: number;
  /** How long one send may wait for the peer (ms) before the attempt fails UNAVAILABLE. Default 1 000. */
  readonly sendTimeoutMs?: number;
  /** ZMTP heartbeat interval (ms), 0 to disable. Default 1 000. */
  readonly heartbeatIntervalMs?: number;
  /** ZMTP heartbeat timeout (ms): a silent peer is disconnected after it. Default 3 000. */
  readonly heartbeatTimeoutMs?: number;
  /** Reconnect delay (ms) and its cap. Defaults 100 and 5 000. */
  readonly reconnectIntervalMs?: number;
  readonly reconnectMaxIntervalMs?: number;
  /** Socket linger on close (ms). Default 0: unsent requests are dropped, never delivered late. */
  readonly lingerMs?: number;
  /** Per-peer high-water marks. Default 10 000. */
  readonly highWaterMark?: number;
  /** CURVE encryption (the worker must be configured with the matching secret key). */
  readonly curve?: ZmqClientCurve;
}

const EMPTY = Buffer.alloc(0);
const NO_ROUTING: readonly Uint8Array[] = [];

/**
 * The ZeroMQ client transport (toto's `ZMQWorkerConnection`): one DEALER socket per endpoint, so
 * balancing, retries to another endpoint, credit and draining happen in JS. Each socket has one
 * receive loop and a bounded send queue (zeromq.js allows a single pending send). `zeromq` is an
 * optional peer dependency loaded on first use; without it calls fail with `ZMQ_MISSING`.
 */
export function zmqTransport(options: ZmqTransportOptions = {}): Transport {
  timerOptions(options, [
    'sendTimeoutMs',
    'heartbeatIntervalMs',
    'heartbeatTimeoutMs',
    'reconnectIntervalMs',
    'reconnectMaxIntervalMs',
    'lingerMs',
  ]);
  const protocol = options.protocol === 'toto' ? 'toto' : 'wrpc/1';
  const channels = new Set<ZmqChannel>();
  const headers = new RequestHeaderEncoder();
  return {
    name: 'zmq',
    protocol,
    checkAddress: address => validateAddress(address, 'zmq-connect'),
    open(address, events, context) {
      const channel = new ZmqChannel(
        validateAddress(address, 'zmq-connect'),
        events,
        context,
        options,
        protocol === 'toto',
        headers,
        channels,
      );
      channels.add(channel);
      return channel;
    },
    async close() {
      await Promise.all([...channels].map(c => c.close()));
    },
  };
}

type Frames = (Uint8Array | string)[];

class ZmqChannel implements Channel {
  private socket: InstanceType<Zmq['Dealer']> | undefined;
  /** Tagged with the request of each message, to fail it when its send fails. */
  private readonly queue: SendQueue<OutgoingRequest>;
  private readonly ready: Promise<void>;
  private loadError: WorkerRpcError | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;

  constructor(
    readonly address: string,
    private readonly events: ChannelEvents,
    private readonly context: ChannelContext,
    private readonly options: ZmqTransportOptions,
    private readonly toto: boolean,
    private readonly headers: RequestHeaderEncoder,
    private readonly registry: Set<ZmqChannel>,
  ) {
    const writer = {
      send: (frames: Frames) =>
        this.socket ? this.socket.send(frames) : this.ready.then(() => this.socket!.send(frames)),
    };
    this.queue = new SendQueue<OutgoingRequest>(
      writer,
      options.sendQueue ?? 10_000,
      (error, requests) => {
        if (this.closed) return;
        for (const request of requests) {
          if (request !== undefined)
            this.events.fail(
              this,
              request.id,
              new WorkerRpcError(
                'UNAVAILABLE',
                `send to ${address} failed: ${(error as Error).message}`,
                { cause: error, endpoint: address },
              ),
            );
        }
      },
      !toto,
    );
    this.ready = this.start();
    this.ready.catch(() => {});
  }

  private async start(): Promise<void> {
    let zmq: Zmq;
    try {
      zmq = await loadZmq();
    } catch (error) {
      this.loadError = error as WorkerRpcError;
      this.events.state(this, 'down', this.loadError);
      throw error;
    }
    if (this.closed) throw new WorkerRpcError('CLOSED', 'channel closed');
    const o = this.options;
    const curve = o.curve;
    let keys: { publicKey: string; secretKey: string } | undefined;
    if (curve)
      keys =
        curve.publicKey && curve.secretKey
          ? { publicKey: curve.publicKey, secretKey: curve.secretKey }
          : zmq.curveKeyPair();
    const socket = new zmq.Dealer({
      linger: o.lingerMs ?? 0,
      immediate: true,
      sendTimeout: o.sendTimeoutMs ?? 1000,
      sendHighWaterMark: o.highWaterMark ?? 10_000,
      receiveHighWaterMark: o.highWaterMark ?? 10_000,
      heartbeatInterval: o.heartbeatIntervalMs ?? 1000,
      heartbeatTimeout: o.heartbeatTimeoutMs ?? 3000,
      reconnectInterval: o.reconnectIntervalMs ?? 100,
      reconnectMaxInterval: o.reconnectMaxIntervalMs ?? 5000,
      maxMessageSize: this.context.maxBodyBytes + BATCH_ALLOWANCE_BYTES,
      ...(curve && keys
        ? {
            curveServerKey: curve.serverKey,
            curvePublicKey: keys.publicKey,
            curveSecretKey: keys.secretKey,
          }
        : {}),
    });
    this.socket = socket;
    socket.events.on('connect', () => {
      if (this.closed) return;
      if (!this.toto) this.ping();
      this.events.state(this, 'up');
    });
    socket.events.on('disconnect', () => {
      if (this.closed) return;
      this.events.state(
        this,
        'down',
        new WorkerRpcError('UNAVAILABLE', `lost connection to ${this.address}`, {
          endpoint: this.address,
        }),
      );
    });
    try {
      socket.connect(this.address);
    } catch (error) {
      this.loadError = new WorkerRpcError(
        'UNAVAILABLE',
        `cannot connect to ${this.address}: ${(error as Error).message}`,
        { cause: error, endpoint: this.address, retryable: false },
      );
      this.events.state(this, 'down', this.loadError);
      throw this.loadError;
    }
    void this.receiveLoop(socket);
  }

  private ping(): void {
    this.queue.pushPair(
      NO_ROUTING,
      encodeHeader({ kind: Kind.PING, id: new Uint8Array(16) }),
      undefined,
    );
  }

  private async receiveLoop(socket: InstanceType<Zmq['Dealer']>): Promise<void> {
    try {
      await receiveLoop(socket, frames => {
        try {
          this.onMessage(frames);
        } catch {
          // a malformed reply never stops the loop
        }
      });
    } catch (error) {
      if (!this.closed)
        this.events.state(
          this,
          'down',
          new WorkerRpcError('UNAVAILABLE', `receive from ${this.address} failed`, {
            cause: error,
            endpoint: this.address,
          }),
        );
    }
  }

  private onMessage(frames: Buffer[]): void {
    // DEALER replies: ['', header, body?, header, body?, ...] (wrpc/1) or ['', id, body?] (toto)
    if (frames.length < 2 || frames[0]!.byteLength !== 0) return;
    if (this.toto) {
      const id = uuidToId(frames[1]!.toString('latin1'));
      if (!id) return;
      const body = frames[2];
      this.events.reply(this, id, {
        kind: body === undefined ? Kind.ACK : Kind.RES,
        body,
        codec: '',
        encoding: '',
        compressed: false,
        credit: -1,
      });
      return;
    }
    const headers: Buffer[] = [];
    const bodies: (Buffer | undefined)[] = [];
    if (!readPairs(frames, headers, bodies, 1)) return;
    for (let i = 0; i < headers.length; i++) {
      const first = headers[i]!;
      const body = bodies[i];
      let header;
      try {
        header = decodeHeader(first);
      } catch {
        continue; // not a wrpc/1 header: dropped
      }
      switch (header.kind) {
        case Kind.RES:
        case Kind.ERR:
        case Kind.ACK:
          this.events.reply(this, header.id, {
            kind: header.kind as KindValue,
            body,
            codec: header.codec,
            encoding: header.encoding,
            compressed: (header.flags & FLAG_COMPRESSED) !== 0,
            credit: header.credit,
          });
          break;
        case Kind.PONG:
        case Kind.CREDIT:
          if (header.credit >= 0) this.events.credit(this, header.credit);
          break;
        case Kind.DRAIN:
          this.events.state(this, 'draining');
          break;
        default:
          break;
      }
    }
  }

  send(request: OutgoingRequest): WorkerRpcError | undefined {
    if (this.loadError) return this.loadError;
    if (this.closed)
      return new WorkerRpcError('CLOSED', 'channel closed', { endpoint: this.address });
    let queued: boolean;
    if (this.toto) {
      queued = this.queue.push([EMPTY, idToUuid(request.id), request.body], request);
    } else {
      let header: Buffer;
      try {
        header = this.headers.encode(request);
      } catch (error) {
        return new WorkerRpcError('INVALID_ARGUMENT', (error as Error).message, { cause: error });
      }
      queued = this.queue.pushPair(
        NO_ROUTING,
        header,
        request.body.byteLength > 0 ? request.body : undefined,
        request,
      );
    }
    if (!queued) {
      return new WorkerRpcError(
        'OVERLOADED',
        `send queue to ${this.address} is full (${this.queue.limit})`,
        { endpoint: this.address },
      );
    }
    return undefined;
  }

  cancel(request: OutgoingRequest): void {
    if (this.toto || this.closed || this.loadError) return;
    this.queue.pushPair(
      NO_ROUTING,
      encodeHeader({ kind: Kind.CANCEL, id: request.id, attempt: request.attempt }),
      undefined,
    );
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      this.registry.delete(this);
      this.queue.close();
      try {
        await this.ready;
      } catch (error) {
        if (!isWorkerRpcError(error)) throw error;
      }
      const socket = this.socket;
      if (socket && !socket.closed) socket.close();
    })().catch(() => {});
    return this.closing;
  }
}
