// @x/resilience demo: three real HTTP backends on loopback; one is flaky, one dies mid-run and
// comes back. A faultTolerant call balances over them, retries elsewhere, opens the dead host's
// circuit, probes it back, and falls back when everything fails. Run: pnpm start (from the root).
import { createServer } from 'node:http';
import { faultTolerant, memoryMetrics, roundRobin } from '../dist/index.js';

function backend(name, behaviour) {
  const server = createServer((req, res) => {
    const mode = behaviour();
    if (mode === 'reset') return req.socket.destroy();
    if (mode === 503) {
      res.writeHead(503, { 'retry-after': '0', 'content-type': 'application/json' });
      return res.end('{"error":"busy"}');
    }
    setTimeout(
      () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ id: req.url.split('/').pop(), servedBy: name }));
      },
      mode === 'slow' ? 80 : 2,
    );
  });
  return new Promise(resolve => server.listen(0, '127.0.0.1', () => resolve(server)));
}

const flaky = () => (Math.random() < 0.25 ? 503 : Math.random() < 0.05 ? 'slow' : 'ok');
const servers = [
  await backend('a', () => 'ok'),
  await backend('b', flaky),
  await backend('c', () => 'ok'),
];
const urls = servers.map(s => `http://127.0.0.1:${s.address().port}`);
const cPort = servers[2].address().port;

const metrics = memoryMetrics();
const getUser = faultTolerant(
  async (call, id) => {
    const res = await call.http.request('GET', `/users/${id}`, { timeout: 500 });
    return res.json();
  },
  {
    dependencyId: 'users',
    loadBalancer: { endpoints: urls, balancer: roundRobin() },
    timeout: 1_000,
    retryAttempts: 2,
    circuitResetTimeout: 1_000,
    expectedIn: 50,
    fallback: (error, id) => ({ id, servedBy: 'fallback', reason: error.code ?? error.message }),
    metrics,
  },
);
const transitions = [];
getUser.onEvent(
  e => e.type === 'stateChange' && transitions.push(`${e.key.split(':')[1]} ${e.from}→${e.to}`),
);

async function phase(name, calls, concurrency = 16) {
  const before = getUser.stats();
  const servedBy = {};
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < calls) {
        const user = await getUser(String(next++));
        servedBy[user.servedBy] = (servedBy[user.servedBy] ?? 0) + 1;
      }
    }),
  );
  const s = getUser.stats();
  const circuits = s.circuits.map(c => `${c.key.split(':')[1]}:${c.state}`).join(' ');
  console.log(
    `| ${name.padEnd(24)} | ${String(calls).padStart(5)} | ${String(s.successes - before.successes).padStart(5)} | ` +
      `${String(s.fallbacks - before.fallbacks).padStart(9)} | ${String(s.retries - before.retries).padStart(7)} | ` +
      `${JSON.stringify(servedBy).padEnd(34)} | ${circuits} |`,
  );
}

console.log('@x/resilience demo: 3 loopback backends (b answers 503 a quarter of the time)\n');
console.log(
  '| phase                    | calls | ok    | fallbacks | retries | served by                          | circuits (port:state) |',
);
console.log('|---|---:|---:|---:|---:|---|---|');
await phase('all up', 600);
servers[2].closeAllConnections();
await new Promise(r => servers[2].close(r));
await phase('c killed', 600);
await phase('c still down', 600);
servers[2] = await new Promise(resolve => {
  const s = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ id: req.url.split('/').pop(), servedBy: 'c' }));
  });
  s.listen(cPort, '127.0.0.1', () => resolve(s));
});
await new Promise(r => setTimeout(r, 1_100)); // the open circuit's reset timeout passes
await phase('c back (probe closes it)', 600);
for (const s of servers) {
  s.closeAllConnections();
  s.close();
}
servers.length = 0;
await phase('everything down', 50);

const s = getUser.stats();
console.log(`\ncircuit transitions: ${transitions.join(', ') || 'none'}`);
console.log(
  `latency p50 ${s.latencyMs.p50.toFixed(1)} ms, p99 ${s.latencyMs.p99.toFixed(1)} ms; retry budget left ${s.retryBudget}`,
);
console.log(
  `rejections: ${JSON.stringify(s.rejections)}; timeouts ${s.timeouts}; degraded ${s.degraded}`,
);
const snapshot = metrics.snapshot();
console.log(
  'metrics (resilience.calls):',
  Object.entries(snapshot.counters)
    .filter(([k]) => k.startsWith('resilience.calls'))
    .map(([k, v]) => `${k}=${v}`)
    .join(' '),
);
await getUser.close();
