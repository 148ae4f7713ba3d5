// JavaScript-only CPU per request of one side, without ZeroMQ I/O or a second process: the
// worker side feeds a ready-made batch of 64 echo requests to the ZeroMQ worker transport's
// message handler (replies go to a socket stub); the client side keeps 64 calls in flight over the
// ZeroMQ client transport whose socket is a stub that answers every batch on the next loop turn.
// It reaches into the transports' internals on purpose (a measuring tool, not an API user), so a
// refactor may need it adjusted. Noise is lower than bench/echo.mjs (one thread, no hand-offs):
// run both builds alternately a few times and compare the minimums, e.g.
//   for i in 1 2 3 4 5; do for d in <copy of old dist> dist; do node bench/jsonly.mjs $d server; done; done
// Usage: node bench/jsonly.mjs <dist folder> server|client [requests, default 300 000]
import { pathToFileURL } from 'node:url';
import { randomBytes } from 'node:crypto';
const [dir, side, N = '300000'] = process.argv.slice(2);
const m = await import(pathToFileURL(dir + '/index.js').href);
const W = 64;
const params = { a: 1, b: 'hello world', c: [1, 2, 3, 4, 5] };
const E = Buffer.alloc(0);
function pack(headers, bodies) {
  let hb = 3,
    bb = 0;
  for (let k = 0; k < headers.length; k++) {
    hb += 2 + headers[k].length;
    bb += 4 + bodies[k].length;
  }
  const h = Buffer.alloc(hb),
    b = Buffer.alloc(bb);
  h[0] = 0xb1;
  h.writeUInt16LE(headers.length, 1);
  let ho = 3,
    bo = 0;
  for (let k = 0; k < headers.length; k++) {
    h.writeUInt16LE(headers[k].length, ho);
    headers[k].copy(h, ho + 2);
    ho += 2 + headers[k].length;
    b.writeUInt32LE(bodies[k].length, bo);
    bodies[k].copy(b, bo + 4);
    bo += 4 + bodies[k].length;
  }
  return [h, b];
}
const tick = () => new Promise(r => setImmediate(r));
let perReq;
if (side === 'server') {
  const worker = m.createWorker({
    transport: m.zmqWorkerTransport({ bind: 'tcp://127.0.0.1:0' }),
    handlers: { bench: { echo: p => p } },
    concurrency: 256,
  });
  await worker.start();
  const t = worker.transports[0];
  const entry = t.sockets[0];
  entry.queue.socket = { send: () => Promise.resolve() };
  const headers = [],
    bodies = [];
  for (let i = 0; i < W; i++) {
    headers.push(
      m.encodeHeader({
        kind: m.Kind.REQ,
        id: randomBytes(16),
        codec: 'json',
        method: 'bench.echo',
        budgetMs: 10000,
      }),
    );
    bodies.push(Buffer.from(JSON.stringify(params)));
  }
  const frames = [randomBytes(5), E, ...pack(headers, bodies)];
  const iters = Math.ceil(Number(N) / W);
  for (let i = 0; i < 2000; i++) {
    t.onMessage(frames, entry.queue, false);
    await tick();
  }
  const c0 = process.cpuUsage();
  for (let i = 0; i < iters; i++) {
    t.onMessage(frames, entry.queue, false);
    await tick();
  }
  const c = process.cpuUsage(c0);
  perReq = (c.user + c.system) / (iters * W);
  await worker.close();
} else {
  const conn = m.createWorkerConnection({
    addresses: 'tcp://127.0.0.1:9',
    transport: m.zmqTransport(),
    timeoutMs: 10000,
    maxInFlight: 100000,
  });
  const endpoint = conn.endpoints ? [...conn.endpointsByAddress.all()][0] : undefined;
  const ch = endpoint.channel;
  await ch.ready;
  const real = ch.socket;
  const tmpl = m.encodeHeader({
    kind: m.Kind.RES,
    id: Buffer.alloc(16),
    codec: 'json',
    credit: 200,
  });
  let pending = [];
  let scheduled = false;
  const body = Buffer.from(JSON.stringify(params));
  const packedBodies = new Map();
  const bodiesFor = n => {
    let b = packedBodies.get(n);
    if (!b) {
      b = Buffer.alloc(n * (4 + body.length));
      for (let k = 0; k < n; k++) {
        b.writeUInt32LE(body.length, k * (4 + body.length));
        body.copy(b, k * (4 + body.length) + 4);
      }
      packedBodies.set(n, b);
    }
    return b;
  };
  const flush = () => {
    scheduled = false;
    const batch = pending;
    pending = [];
    for (const frames of batch) {
      const h = frames[1];
      if (!(frames.length === 3 && h[0] === 0xb1)) continue; // pings etc.
      const n = h.readUInt16LE(1);
      const out = Buffer.allocUnsafe(3 + n * (2 + tmpl.length));
      out[0] = 0xb1;
      out.writeUInt16LE(n, 1);
      let ho = 3,
        o = 3;
      for (let k = 0; k < n; k++) {
        const hl = h.readUInt16LE(ho);
        out.writeUInt16LE(tmpl.length, o);
        tmpl.copy(out, o + 2);
        h.copy(out, o + 2 + 4, ho + 2 + 4, ho + 2 + 20);
        ho += 2 + hl;
        o += 2 + tmpl.length;
      }
      ch.onMessage([E, out, bodiesFor(n)]);
    }
  };
  ch.socket = {
    send(frames) {
      pending.push(frames);
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
      return Promise.resolve();
    },
    closed: false,
    close() {},
  };
  ch.events.state(ch, 'up');
  const run = async n => {
    let left = n;
    await Promise.all(
      Array.from({ length: W }, async () => {
        while (left-- > 0) await conn.invoke('bench.echo', params);
      }),
    );
  };
  await run(100000);
  const c0 = process.cpuUsage();
  await run(Number(N));
  const c = process.cpuUsage(c0);
  perReq = (c.user + c.system) / Number(N);
  ch.socket = real;
  await conn.close();
}
console.log(`${side} ${dir.split('/').slice(-2).join('/')} ${perReq.toFixed(2)} us/req`);
process.exit(0);
