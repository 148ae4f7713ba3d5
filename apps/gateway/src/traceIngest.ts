import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { secretMatches } from '@x/resilience';
import { otlpSpans } from './otlpSpans.js';
import { sendJson } from './sendJson.js';
import type { TraceStore } from './traceStore.js';

/** Largest OTLP export request taken (a batch of 512 spans is far below). */
export const MAX_EXPORT_BYTES = 4 * 1024 * 1024;

/** The gateway's OTLP/HTTP trace receiver while it listens on loopback for its instances. */
export interface TraceIngestListener {
  /** `http://127.0.0.1:<port>/v1/traces`: what the instances get as `X_TRACES_URL`. */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Where the gateway's instances (and any process holding the admin token) report their spans:
 * OTLP/HTTP `POST …/v1/traces` as `http/json` or `http/protobuf`, with
 * `Authorization: Bearer <admin token>` (it writes into the dashboard, so it needs the token even
 * when the dashboard is open). Served on the admin surface at `/_x/traces/v1/traces` and on a
 * loopback listener of its own ({@link listen}), which exists before the instances start (the
 * gateway's port is known only later). Answers 401 without the token, 413 over
 * {@link MAX_EXPORT_BYTES}, 400 for a body that is not an export request, else 200.
 */
export class TraceIngest {
  /** Export requests taken, spans kept, requests refused, since the start. */
  readonly counters = { requests: 0, spans: 0, refused: 0 };

  constructor(
    private readonly store: TraceStore,
    private readonly token: string,
  ) {}

  /** Serves one export request. */
  handle(req: IncomingMessage, res: ServerResponse): void {
    const refuse = (status: number, code: string, message: string, headers = {}) => {
      this.counters.refused++;
      req.resume();
      sendJson(res, status, { error: { code, message } }, { ...headers, connection: 'close' });
    };
    if (req.method !== 'POST')
      return refuse(405, 'METHOD_NOT_ALLOWED', 'POST an OTLP export request', { allow: 'POST' });
    const auth = req.headers.authorization;
    if (auth === undefined || !/^bearer /i.test(auth) || !secretMatches(auth.slice(7), this.token))
      return refuse(
        401,
        'UNAUTHORIZED',
        'posting spans needs Authorization: Bearer <admin token>',
        {
          'www-authenticate': 'Bearer',
        },
      );
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_EXPORT_BYTES)
      return refuse(
        413,
        'TOO_LARGE',
        `an export request may have at most ${MAX_EXPORT_BYTES} bytes, got ${declared}`,
      );
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_EXPORT_BYTES) over = true;
      else chunks.push(chunk);
    });
    req.on('error', () => res.destroy());
    req.on('end', () => {
      if (over)
        return refuse(
          413,
          'TOO_LARGE',
          `an export request may have at most ${MAX_EXPORT_BYTES} bytes, got more`,
        );
      const type = String(req.headers['content-type'] ?? '');
      otlpSpans(Buffer.concat(chunks), type).then(
        spans => {
          this.counters.requests++;
          this.counters.spans += spans.length;
          for (const span of spans) this.store.add(span);
          if (type.includes('json')) sendJson(res, 200, {});
          else
            res
              .writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': 0 })
              .end();
        },
        (error: unknown) =>
          refuse(
            400,
            'INVALID_EXPORT',
            `body: expected an OTLP ExportTraceServiceRequest (http/json or http/protobuf), got one that does not decode (${(error as Error).message})`,
          ),
      );
    });
  }

  /** Starts the loopback listener for the instances (`127.0.0.1`, a free port). */
  async listen(): Promise<TraceIngestListener> {
    const server: Server = createServer((req, res) => {
      if ((req.url ?? '').split('?')[0] === '/v1/traces') this.handle(req, res);
      else {
        req.resume();
        sendJson(res, 404, { error: { code: 'NOT_FOUND', message: 'only POST /v1/traces here' } });
      }
    });
    server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    return {
      url: `http://127.0.0.1:${port}/v1/traces`,
      close: () =>
        new Promise<void>(resolve => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    };
  }
}
