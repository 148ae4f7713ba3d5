import { clearTimer, setTimer } from '@x/resilience';
import { durationOption, timerOptions } from './internal/durationOption.js';
import { validateAddress } from './validateAddress.js';
import { WorkerRpcError } from './errors.js';
import { isUuidFrame, splitEnvelope } from './internal/envelope.js';
import { ReplyHeaderEncoder } from './internal/headerCache.js';
import { uuidToId } from './internal/ids.js';
import { loadZmq, type Zmq } from './internal/loadZmq.js';
import { receiveLoop } from './internal/receiveLoop.js';
import { BATCH_ALLOWANCE_BYTES, SendQueue, readPairs } from './internal/sendQueue.js';
import {
  FIXED_HEADER_BYTES,
  PROTOCOL_VERSION,
  FLAG_ACK,
  FLAG_COMPRESSED,
  FLAG_IDEMPOTENT,
  ID_BYTES,
  Kind,
  decodeHeader,
  encodeHeader,
  type KindValue,
  type WireHeader,
} from './protocol.js';
import type {
  IncomingRequest,
  ResponseInfo,
  WorkerSink,
  WorkerTransport,
} from './workerTransport.js';

/** Longest wait in `close()` for queued replies and DRAIN notices to leave. */
const CLOSE_FLUSH_MS = 200;

/** CURVE settings of a worker. */
export interface ZmqWorkerCurve {
  /** Our Z85 secret key (bind mode: we are the CURVE server; clients use the matching public key). */
  readonly secretKey: string;
  /** Our Z85 public key (connect mode, together with `serverKey`). */
  readonly publicKey?: string;
  /** Connect mode: the router's/broker's public key (it is the CURVE server then). */
  readonly serverKey?: string;
}

/** Options of {@link zmqWorkerTransport}. Give `bind` or `connect` (or both). */
export interface ZmqWorkerTransportOptions {
  /** Addresses to bind a ROUTER to (clients connect here), e.g. `tcp://0.0.0.0:55555` or `tcp://127.0.0.1:0`. */
  readonly bind?: string | readonly string[];
  /**
   * Addresses of a router/broker backend to connect a DEALER to (toto's worker-only mode,
   * `worker_socket_address`). Credit is announced there on connect and every `announceIntervalMs`.
   */
  readonly connect?: string | readonly string[];
  /** `auto` (default) answers wrpc/1 and toto frames; `wrpc/1` or `toto` accept only one. */
  readonly protocol?: 'auto' | 'wrpc/1' | 'toto';
  /** Replies waiting per socket before they are dropped. Default 10 000. */
  readonly sendQueue?: number;
  /** How long a reply may wait for a slow peer (ms) before it is dropped. Default 1 000. */
  readonly sendTimeoutMs?: number;
  /** ZMTP heartbeats (ms). Defaults 1 000 / 3 000; 0 disables. */
  readonly heartbeatIntervalMs?: number;
  readonly heartbeatTimeoutMs?: number;
  /** Connect mode: how often credit is announced (ms); 0 only on connect. Default 1 000. */
  readonly announceIntervalMs?: number;
  /** Per-peer high-water marks. Default 10 000. */
  readonly highWaterMark?: number;
  /** Socket linger on close (ms). Default 0. */
  readonly lingerMs?: number;
  /** Client identities remembered for DRAIN notices. Default 10 000. */
  readonly maxPeers?: number;
  readonly curve?: ZmqWorkerCurve;
}

const EMPTY = Buffer.alloc(0);
const NO_ROUTING: readonly Buffer[] = [];
type Socket = InstanceType<Zmq['Router']> | InstanceType<Zmq['Dealer']>;

function list(value: string | readonly string[] | undefined): string[] {
  if (value === undefined) return [];
  return (typeof value === 'string' ? value.split(',') : [...value])
    .map(s => s.trim())
    .filter(Boolean);
}

/**
 * The ZeroMQ worker transport: a ROUTER bound for clients (async handlers run concurrently, unlike
 * toto's one-at-a-time REP), and/or a DEALER connected to a router or broker backend. It answers
 * wrpc/1 and, by default, toto frames (`[id, body]` after the delimiter) so toto clients can call
 * it. One receive loop and a bounded send queue per socket; malformed frames are answered with a
 * typed ERR when they carry an id, dropped and counted otherwise, and never stop the loop.
 */
export function zmqWorkerTransport(options: ZmqWorkerTransportOptions): WorkerTransport {
  return new ZmqWorkerTransport(options);
}

class ZmqWorkerTransport implements WorkerTransport {
  readonly name = 'zmq';
  addresses: string[] = [];
  private readonly sockets: { socket: Socket; queue: SendQueue; dealer: boolean }[] = [];
  private readonly peers = new Map<string, Buffer[]>();
  private readonly headers = new ReplyHeaderEncoder();
  private sink: WorkerSink | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;
  private closed = false;

  constructor(private readonly options: ZmqWorkerTransportOptions) {
    if (list(options.bind).length === 0 && list(options.connect).length === 0)
      throw new TypeError('zmqWorkerTransport needs bind or connect addresses');
    for (const a of list(options.bind)) validateAddress(a, 'zmq-bind', 'bind');
    for (const a of list(options.connect)) validateAddress(a, 'zmq-connect', 'connect');
    durationOption(options.announceIntervalMs ?? 1000, 'announceIntervalMs', {
      allowInfinity: false,
    });
    timerOptions(options, [
      'sendTimeoutMs',
      'heartbeatIntervalMs',
      'heartbeatTimeoutMs',
      'lingerMs',
    ]);
  }

  async start(sink: WorkerSink): Promise<void> {
    this.sink = sink;
    const zmq = await loadZmq();
    const o = this.options;
    const common = {
      linger: o.lingerMs ?? 0,
      sendTimeout: o.sendTimeoutMs ?? 1000,
      sendHighWaterMark: o.highWaterMark ?? 10_000,
      receiveHighWaterMark: o.highWaterMark ?? 10_000,
      heartbeatInterval: o.heartbeatIntervalMs ?? 1000,
      heartbeatTimeout: o.heartbeatTimeoutMs ?? 3000,
      maxMessageSize: sink.maxBodyBytes + BATCH_ALLOWANCE_BYTES,
    };
    const binds = list(o.bind);
    if (binds.length > 0) {
      const router = new zmq.Router({
        ...common,
        mandatory: true,
        ...(o.curve ? { curveServer: true, curveSecretKey: o.curve.secretKey } : {}),
      });
      this.track(router, false);
      for (const address of binds) {
        await router.bind(address);
        this.addresses.push(router.lastEndpoint ?? address);
      }
      void this.receiveLoop(router, false);
    }
    const connects = list(o.connect);
    if (connects.length > 0) {
      let curve = {};
      if (o.curve) {
        if (!o.curve.serverKey)
          throw new TypeError('curve.serverKey is required to connect to a CURVE router');
        const keys = o.curve.publicKey
          ? { publicKey: o.curve.publicKey, secretKey: o.curve.secretKey }
          : zmq.curveKeyPair();
        curve = {
          curveServerKey: o.curve.serverKey,
          curvePublicKey: keys.publicKey,
          curveSecretKey: keys.secretKey,
        };
      }
      const dealer = new zmq.Dealer({
        ...common,
        immediate: true,
        reconnectInterval: 100,
        reconnectMaxInterval: 5000,
        ...curve,
      });
      const entry = this.track(dealer, true);
      dealer.events.on('connect', () => this.announce(entry.queue));
      for (const address of connects) {
        dealer.connect(address);
        this.addresses.push(address);
      }
      void this.receiveLoop(dealer, true);
      const every = o.announceIntervalMs ?? 1000;
      if (every > 0) {
        this.timer = setInterval(() => this.announce(entry.queue), every);
        this.timer.unref?.();
      }
    }
  }

  private track(socket: Socket, dealer: boolean) {
    const queue = new SendQueue(
      socket,
      this.options.sendQueue ?? 10_000,
      () => {
        // unroutable or timed-out reply: the client is gone or too slow; it will time out or retry
      },
      this.options.protocol !== 'toto',
    );
    const entry = { socket, queue, dealer };
    this.sockets.push(entry);
    return entry;
  }

  private announce(queue: SendQueue): void {
    if (this.closed || !this.sink) return;
    queue.pushPair(
      NO_ROUTING,
      encodeHeader({ kind: Kind.CREDIT, id: ZERO_ID, credit: this.sink.credit() }),
      undefined,
    );
  }

  private async receiveLoop(socket: Socket, dealer: boolean): Promise<void> {
    const entry = this.sockets.find(s => s.socket === socket)!;
    try {
      await receiveLoop(socket, frames => {
        try {
          this.onMessage(frames, entry.queue, dealer);
        } catch (error) {
          this.sink?.rejected(
            error instanceof WorkerRpcError
              ? error
              : new WorkerRpcError('BAD_FRAME', String(error)),
          );
        }
      });
    } catch (error) {
      if (!this.closed)
        this.sink?.rejected(
          new WorkerRpcError('UNAVAILABLE', `receive loop ended: ${(error as Error).message}`),
        );
    }
  }

  private onMessage(frames: Buffer[], queue: SendQueue, dealer: boolean): void {
    const sink = this.sink!;
    const split = splitEnvelope(frames, dealer ? 0 : 1);
    if (!split) {
      sink.rejected(new WorkerRpcError('BAD_FRAME', 'message without a routing envelope'));
      return;
    }
    const { routing, content } = split;
    const first = content[0]!;
    const protocol = this.options.protocol ?? 'auto';
    if (protocol !== 'wrpc/1' && isUuidFrame(first)) {
      this.onToto(routing, content, queue);
      return;
    }
    if (protocol === 'toto') {
      sink.rejected(new WorkerRpcError('BAD_FRAME', 'expected a toto message id'));
      return;
    }
    const headers: Buffer[] = [];
    const bodies: (Buffer | undefined)[] = [];
    if (!readPairs(content, headers, bodies)) {
      const e = new WorkerRpcError(
        'BAD_FRAME',
        `message has ${content.length} frames after the delimiter (expected header/body pairs)`,
      );
      sink.rejected(e);
      if (first.byteLength >= FIXED_HEADER_BYTES && first[0] === PROTOCOL_VERSION)
        this.sendError(queue, routing, first.subarray(4, 4 + ID_BYTES), first[3] ?? 0, e);
      return;
    }
    if (!dealer && routing.length > 0) this.remember(routing);
    for (let i = 0; i < headers.length; i++) this.onPair(routing, headers[i]!, bodies[i], queue);
  }

  private onPair(
    routing: Buffer[],
    first: Buffer,
    body: Buffer | undefined,
    queue: SendQueue,
  ): void {
    const sink = this.sink!;
    let header;
    try {
      header = decodeHeader(first);
    } catch (error) {
      const e = error as WorkerRpcError;
      sink.rejected(e);
      // answer when the frame is long enough to carry an id, so the caller fails fast
      if (first.byteLength >= FIXED_HEADER_BYTES)
        this.sendError(queue, routing, first.subarray(4, 4 + ID_BYTES), first[3] ?? 0, e);
      return;
    }
    switch (header.kind) {
      case Kind.REQ: {
        sink.request(new ZmqRequest(this, queue, routing, header, body));
        return;
      }
      case Kind.CANCEL:
        sink.cancel(header.id);
        return;
      case Kind.PING:
        queue.pushPair(
          routing,
          encodeHeader({ kind: Kind.PONG, id: header.id, credit: sink.credit() }),
          undefined,
        );
        return;
      default:
        return; // RES/ERR/ACK/CREDIT/PONG/DRAIN are not for a worker: ignored
    }
  }

  private onToto(routing: Buffer[], content: Buffer[], queue: SendQueue): void {
    const idText = content[0]!;
    const id = uuidToId(idText.toString('latin1'))!;
    const body = content[1];
    const respondToto = (kind: KindValue, replyBody: Uint8Array | undefined) => {
      const frames =
        kind === Kind.ACK || replyBody === undefined
          ? [...routing, EMPTY, idText]
          : [...routing, EMPTY, idText, replyBody];
      queue.push(frames);
    };
    if (content.length !== 2) {
      const e = new WorkerRpcError('BAD_FRAME', 'toto request must be [id, body]');
      this.sink!.rejected(e);
      // toto's own worker answered failures with a bare [id]; the error value is more useful
      respondToto(
        Kind.RES,
        Buffer.from(JSON.stringify({ error: { code: 1003, value: e.message } })),
      );
      return;
    }
    this.sink!.request({
      id,
      method: '',
      attempt: 0,
      budgetMs: -1,
      // toto's auto_retry re-sends the same message id: dedupe runs it once
      idempotent: true,
      key: '',
      meta: undefined,
      ack: false,
      codec: '',
      encoding: '',
      compressed: false,
      body,
      toto: true,
      wrapErrors: false,
      respond: respondToto,
    });
  }

  private remember(routing: Buffer[]): void {
    const key = routing[0]!.toString('latin1');
    if (this.peers.has(key)) return;
    if (this.peers.size >= (this.options.maxPeers ?? 10_000)) {
      const oldest = this.peers.keys().next().value;
      if (oldest !== undefined) this.peers.delete(oldest);
    }
    this.peers.set(key, routing);
  }

  /** Sends a reply of request `id` (see {@link ZmqRequest.respond}). */
  respond(
    queue: SendQueue,
    routing: Buffer[],
    id: Uint8Array,
    attempt: number,
    kind: KindValue,
    body: Uint8Array | undefined,
    info: ResponseInfo,
  ): void {
    if (this.closed) return;
    const header = this.headers.encode(
      kind,
      id,
      attempt,
      info.codec,
      info.encoding,
      info.compressed,
      info.credit,
    );
    queue.pushPair(routing, header, body !== undefined && body.byteLength > 0 ? body : undefined);
  }

  private sendError(
    queue: SendQueue,
    routing: Buffer[],
    id: Uint8Array,
    attempt: number,
    error: WorkerRpcError,
  ): void {
    if (id.byteLength !== ID_BYTES) return;
    const body = Buffer.from(
      JSON.stringify({ code: error.code, message: error.message, retryable: false }),
    );
    const header = encodeHeader({
      kind: Kind.ERR,
      id,
      attempt,
      codec: 'json',
      credit: this.sink?.credit() ?? -1,
    });
    queue.pushPair(routing, header, body);
  }

  drain(): void {
    for (const { queue, dealer } of this.sockets) {
      const header = encodeHeader({ kind: Kind.DRAIN, id: ZERO_ID, credit: 0 });
      if (dealer) queue.pushPair(NO_ROUTING, header, undefined);
      else for (const routing of this.peers.values()) queue.pushPair(routing, header, undefined);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // let the DRAIN notices and last replies leave before closing (bounded wait)
    let timer: unknown;
    await Promise.race([
      Promise.all(this.sockets.map(s => s.queue.whenIdle())),
      new Promise<void>(resolve => (timer = setTimer(resolve, CLOSE_FLUSH_MS))),
    ]);
    clearTimer(timer);
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const { socket, queue } of this.sockets) {
      queue.close();
      if (!socket.closed) socket.close();
    }
    this.sockets.length = 0;
    this.peers.clear();
  }
}

const ZERO_ID = new Uint8Array(ID_BYTES);

/**
 * A wrpc/1 request received on a ZeroMQ socket: a class rather than an object literal with a
 * `respond` closure, so a request costs one allocation.
 */
class ZmqRequest implements IncomingRequest {
  readonly id: Uint8Array;
  readonly method: string;
  readonly attempt: number;
  readonly budgetMs: number;
  readonly idempotent: boolean;
  readonly key: string;
  readonly meta: Readonly<Record<string, string>> | undefined;
  readonly ack: boolean;
  readonly codec: string;
  readonly encoding: string;
  readonly compressed: boolean;
  readonly toto = false;
  readonly wrapErrors = false;

  constructor(
    private readonly transport: ZmqWorkerTransport,
    private readonly queue: SendQueue,
    private readonly routing: Buffer[],
    header: WireHeader,
    readonly body: Buffer | undefined,
  ) {
    this.id = header.id;
    this.method = header.method;
    this.attempt = header.attempt;
    this.budgetMs = header.budgetMs;
    this.idempotent = (header.flags & FLAG_IDEMPOTENT) !== 0;
    this.key = header.key;
    this.meta = header.meta;
    this.ack = (header.flags & FLAG_ACK) !== 0;
    this.codec = header.codec || 'json';
    this.encoding = header.encoding;
    this.compressed = (header.flags & FLAG_COMPRESSED) !== 0;
  }

  respond(kind: KindValue, body: Uint8Array | undefined, info: ResponseInfo): void {
    this.transport.respond(this.queue, this.routing, this.id, this.attempt, kind, body, info);
  }
}
