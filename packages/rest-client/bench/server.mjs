// A small JSON server for the benchmarks, run in a child process so its CPU is separate from the
// client's. Usage: node bench/server.mjs [count] → prints "listening <port> <port> ..." once ready.
import { createServer } from 'node:http';

const count = Number(process.argv[2] ?? 1);
const body = JSON.stringify({
  id: 42,
  name: 'lupyne',
  tags: ['search', 'rest', 'json'],
  score: 0.97,
});
const length = String(Buffer.byteLength(body));
const delayMs = Number(process.env.BENCH_DELAY_MS ?? 0);

function handler(req, res) {
  req.resume();
  const send = () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': length });
    res.end(body);
  };
  if (delayMs > 0) setTimeout(send, delayMs);
  else send();
}

const ports = await Promise.all(
  Array.from({ length: count }, () => {
    const server = createServer(handler);
    server.keepAliveTimeout = 60_000;
    return new Promise(resolve =>
      server.listen(0, '127.0.0.1', () => resolve(server.address().port)),
    );
  }),
);
console.log(`listening ${ports.join(' ')}`);
process.on('disconnect', () => process.exit(0));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
