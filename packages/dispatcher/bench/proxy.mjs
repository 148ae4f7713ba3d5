// Proxy benchmark: req/s and p99 at fixed concurrency for a small JSON backend reached directly
// (the floor), through @x/dispatcher, @fastify/http-proxy, http-proxy-3, and nginx when installed.
// Every party runs in its own process; the load comes from wrk when installed, else from an undici
// Pool in a separate process. Run it as: flock /tmp/bench.lock node bench/proxy.mjs [--quick]
//
// Options: --quick (short runs), --duration=S, --warmup=S (default 2), --concurrency=N, --rounds=N,
// --only=a,b, --loader=undici (ignore wrk), --base=DIR (an older build's dist/ as extra A/B parties:
// `cp -r dist .bench-base` before changing the code, then --base=.bench-base). The machine is
// shared: parties run interleaved, round after round, and ratios are medians of per-round ratios;
// CPU µs per request is reported as a steadier figure.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, Agent as HttpAgent } from 'node:http';
import os, { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const self = fileURLToPath(import.meta.url);
const args = Object.fromEntries(
  process.argv.slice(2).map(a => {
    const [k, v] = a.replace(/^--/, '').split('=');
    return [k, v ?? 'true'];
  }),
);

// ---- roles (child processes) ---------------------------------------------------------------

async function roleBackend() {
  const payload = JSON.stringify({
    id: 42,
    name: 'widget',
    tags: ['a', 'b', 'c'],
    price: 9.99,
    stock: true,
  });
  const server = createServer((req, res) => {
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(payload),
    });
    res.end(payload);
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => console.log(`ready ${server.address().port}`));
}

/** The front door; `dist` picks another build (an A/B run); `inProcess` serves the payload itself. */
async function roleDispatcher(target, dist, inProcess, pipelining) {
  const {
    createDispatcher,
    remote,
    inProcess: local,
  } = await import(dist ? pathToFileURL(join(resolve(dist), 'index.js')).href : '../dist/index.js');
  const payload = JSON.stringify({
    id: 42,
    name: 'widget',
    tags: ['a', 'b', 'c'],
    price: 9.99,
    stock: true,
  });
  const backend = inProcess
    ? local(() => ({ status: 200, headers: { 'content-type': 'application/json' }, body: payload }))
    : remote([target]);
  const dispatcher = createDispatcher({
    ...(pipelining > 1 ? { upstream: { pipelining } } : {}),
    modules: {
      default: {
        versions: {
          v1: { backend, maxConcurrentRequests: 1024, maxQueuedRequests: 10_000 },
        },
      },
    },
  });
  const door = await dispatcher.listen({ port: 0, keepAliveTimeoutMs: 60_000 });
  console.log(`ready ${door.port}`);
}

/** The Node floor: node:http in, one undici Pool out, nothing else (no routing, no protections). */
async function roleBare(target, pipelining = 1) {
  const { Pool } = await import('undici');
  const pool = new Pool(target, { connections: 1024, pipelining, keepAliveTimeout: 60_000 });
  const server = createServer((req, res) => {
    pool.dispatch(
      {
        path: req.url,
        method: req.method,
        headers: req.rawHeaders,
        body: req.method === 'GET' || req.method === 'HEAD' ? null : req,
        blocking: pipelining > 1 ? false : undefined,
      },
      {
        onRequestStart() {},
        onResponseStart(_c, status, headers, text) {
          res.writeHead(status, text, headers);
        },
        onResponseData(c, chunk) {
          if (!res.write(chunk)) {
            c.pause();
            res.once('drain', () => c.resume());
          }
        },
        onResponseEnd() {
          res.end();
        },
        onResponseError() {
          if (!res.headersSent) res.writeHead(502);
          res.end();
        },
      },
    );
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => console.log(`ready ${server.address().port}`));
}

async function roleFastify(target) {
  const { default: Fastify } = await import('fastify');
  const { default: proxy } = await import('@fastify/http-proxy');
  const app = Fastify({ logger: false, keepAliveTimeout: 60_000 });
  await app.register(proxy, { upstream: target });
  await app.listen({ port: 0, host: '127.0.0.1' });
  console.log(`ready ${app.server.address().port}`);
}

async function roleHttpProxy3(target) {
  const { createProxyServer } = await import('http-proxy-3');
  const agent = new HttpAgent({ keepAlive: true, maxSockets: 1024 });
  const proxy = createProxyServer({ target, agent });
  proxy.on('error', (_error, _req, res) => {
    if (res && !res.headersSent) {
      res.writeHead(502);
      res.end();
    }
  });
  const server = createServer((req, res) => proxy.web(req, res));
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => console.log(`ready ${server.address().port}`));
}

/** undici load generator: `concurrency` loops of sequential requests for `durationMs`. */
async function roleLoad(url, concurrency, durationMs, warmupMs) {
  const { Pool } = await import('undici');
  const pool = new Pool(url, { connections: concurrency, pipelining: 1 });
  const latencies = [];
  let count = 0;
  let errors = 0;
  let measuring = false;
  const end = performance.now() + warmupMs + durationMs;
  setTimeout(() => (measuring = true), warmupMs);
  let started = 0;
  const loop = async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      try {
        const { statusCode, body } = await pool.request({ method: 'GET', path: '/' });
        await body.dump();
        if (statusCode !== 200) errors++;
      } catch {
        errors++;
      }
      if (measuring) {
        if (started === 0) started = t0;
        count++;
        if (latencies.length < 2_000_000) latencies.push(performance.now() - t0);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const p99 = latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * 0.99))] ?? 0;
  await pool.close();
  console.log(JSON.stringify({ rps: count / elapsed, p99, errors }));
}

// ---- orchestration -------------------------------------------------------------------------

function startRole(role, extra = []) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [self, `--role=${role}`, ...extra], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let buffer = '';
    const onData = chunk => {
      buffer += chunk;
      const match = /ready (\d+)/.exec(buffer);
      if (match) {
        child.stdout.off('data', onData);
        child.stdout.resume();
        resolve({ child, port: Number(match[1]) });
      }
    };
    child.stdout.on('data', onData);
    child.once('exit', code => reject(new Error(`${role} exited with ${code} before ready`)));
  });
}

function stop(child) {
  return new Promise(resolve => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 3_000).unref();
  });
}

/** CPU seconds (user + system) used so far by `pid` and its descendants (Linux /proc; 0 elsewhere). */
function cpuSeconds(pid) {
  try {
    const ticks = 100; // USER_HZ
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    let total = (Number(fields[11]) + Number(fields[12])) / ticks;
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const children = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      for (const child of children ? children.split(' ') : []) total += cpuSeconds(Number(child));
    }
    return total;
  } catch {
    return 0;
  }
}

const which = name =>
  spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).stdout.trim() || undefined;

function waitForPort(port, timeoutMs = 5_000) {
  const end = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = async () => {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/`);
        await res.arrayBuffer();
        resolve();
      } catch (error) {
        if (Date.now() > end) reject(error);
        else setTimeout(attempt, 50);
      }
    };
    attempt();
  });
}

async function startNginx(nginx, backendPort) {
  const dir = mkdtempSync(join(tmpdir(), 'x-bench-nginx-'));
  const probe = spawnSync(process.execPath, [self, '--role=port'], { encoding: 'utf8' });
  const port = Number(probe.stdout.trim());
  const user = process.getuid?.() === 0 ? 'user root;\n' : '';
  const conf = `${user}worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_timeout 60s;
  keepalive_requests 1000000;
  upstream backend { server 127.0.0.1:${backendPort}; keepalive 256; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
  writeFileSync(join(dir, 'nginx.conf'), conf);
  const child = spawn(
    nginx,
    ['-p', dir, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf')],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  await waitForPort(port);
  return { child, port, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

function runWrk(wrk, port, concurrency, durationS, warmupS) {
  const url = `http://127.0.0.1:${port}/`;
  if (warmupS > 0)
    spawnSync(wrk, ['-t1', `-c${concurrency}`, `-d${warmupS}s`, url], { encoding: 'utf8' });
  const out = spawnSync(wrk, ['-t1', `-c${concurrency}`, `-d${durationS}s`, '--latency', url], {
    encoding: 'utf8',
  }).stdout;
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0);
  const p99 = parseWrkLatency(/\s99%\s+([\d.]+\w+)/.exec(out)?.[1] ?? '0ms');
  const errors =
    Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0) +
    Number(/Socket errors: .*?timeout (\d+)/.exec(out)?.[1] ?? 0);
  return { rps, p99, errors };
}

function parseWrkLatency(text) {
  const match = /([\d.]+)(us|ms|s)/.exec(text);
  if (!match) return 0;
  const value = Number(match[1]);
  return match[2] === 'us' ? value / 1000 : match[2] === 's' ? value * 1000 : value;
}

async function runUndici(port, concurrency, durationS, warmupS) {
  const child = spawn(
    process.execPath,
    [
      self,
      '--role=load',
      `--url=http://127.0.0.1:${port}`,
      `--c=${concurrency}`,
      `--ms=${durationS * 1000}`,
      `--warmup=${warmupS * 1000}`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', c => (out += c));
  await new Promise(resolve => child.once('exit', resolve));
  return JSON.parse(out.trim().split('\n').at(-1));
}

const median = values => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};

async function main() {
  const quick = args.quick === 'true';
  const durationS = Number(args.duration ?? (quick ? 2 : 4));
  // a loaded machine takes seconds to get a fresh process's JIT warm: shorter warm-ups measure it
  const warmupS = Number(args.warmup ?? 2);
  const concurrency = Number(args.concurrency ?? 50);
  const rounds = Number(args.rounds ?? (quick ? 1 : 7));
  const wrk = args.loader === 'undici' ? undefined : which('wrk');
  const nginx =
    which('nginx') ??
    (spawnSync('sh', ['-c', 'test -x /usr/sbin/nginx && echo /usr/sbin/nginx'], {
      encoding: 'utf8',
    }).stdout.trim() ||
      undefined);
  const only = args.only ? new Set(args.only.split(',')) : undefined;

  const backend = await startRole('backend');
  const target = `http://127.0.0.1:${backend.port}`;
  const parties = [
    {
      name: 'direct',
      label: 'direct to the backend (floor)',
      start: async () => ({ port: backend.port, pid: backend.child.pid, stop: async () => {} }),
    },
    {
      name: 'dispatcher',
      label: '@x/dispatcher front door',
      start: async () => wrap(await startRole('dispatcher', [`--target=${target}`])),
    },
    {
      name: 'dispatcher-pipelined',
      label: '@x/dispatcher front door, upstream.pipelining 10',
      start: async () =>
        wrap(await startRole('dispatcher', [`--target=${target}`, '--pipelining=10'])),
    },
    {
      name: 'inprocess',
      label: '@x/dispatcher, in-process handler (no second hop)',
      start: async () => wrap(await startRole('dispatcher', ['--inprocess=true'])),
    },
    ...(args.base
      ? [
          {
            name: 'base',
            label: `@x/dispatcher front door, build in ${args.base} (A/B)`,
            start: async () =>
              wrap(await startRole('dispatcher', [`--target=${target}`, `--dist=${args.base}`])),
          },
          {
            name: 'base-inprocess',
            label: `@x/dispatcher in-process, build in ${args.base} (A/B)`,
            start: async () =>
              wrap(await startRole('dispatcher', ['--inprocess=true', `--dist=${args.base}`])),
          },
        ]
      : []),
    {
      name: 'bare',
      label: 'bare node:http + undici Pool (Node floor, no features)',
      start: async () => wrap(await startRole('bare', [`--target=${target}`])),
    },
    {
      name: 'bare-pipelined',
      label: 'bare node:http + undici Pool, upstream pipelining 10',
      start: async () => wrap(await startRole('bare', [`--target=${target}`, '--pipelining=10'])),
    },
    {
      name: 'fastify',
      label: '@fastify/http-proxy',
      start: async () => wrap(await startRole('fastify', [`--target=${target}`])),
    },
    {
      name: 'http-proxy-3',
      label: 'http-proxy-3 (keep-alive agent)',
      start: async () => wrap(await startRole('http-proxy-3', [`--target=${target}`])),
    },
  ];
  if (nginx) {
    parties.push({
      name: 'nginx',
      label: 'nginx (1 worker, upstream keepalive)',
      start: async () => {
        const n = await startNginx(nginx, backend.port);
        return {
          port: n.port,
          pid: n.child.pid,
          stop: async () => (await stop(n.child), n.cleanup()),
        };
      },
    });
  }
  function wrap({ child, port }) {
    return { port, pid: child.pid, stop: () => stop(child) };
  }

  const results = new Map();
  try {
    for (let round = 0; round < rounds; round++) {
      for (const party of parties) {
        if (only && !only.has(party.name) && party.name !== 'direct' && party.name !== 'dispatcher')
          continue;
        const running = await party.start();
        try {
          await waitForPort(running.port);
          if (wrk && warmupS > 0)
            spawnSync(wrk, [
              '-t1',
              `-c${concurrency}`,
              `-d${warmupS}s`,
              `http://127.0.0.1:${running.port}/`,
            ]);
          const cpu0 = cpuSeconds(running.pid);
          const result = wrk
            ? runWrk(wrk, running.port, concurrency, durationS, 0)
            : await runUndici(running.port, concurrency, durationS, warmupS);
          // CPU per request of the serving process (the proxy; the backend for "direct"): a figure
          // that other load on a shared machine disturbs far less than req/s
          result.cpuUs = ((cpuSeconds(running.pid) - cpu0) * 1e6) / (result.rps * durationS);
          const list = results.get(party.name) ?? [];
          list.push(result);
          results.set(party.name, list);
          process.stderr.write(
            `round ${round + 1}/${rounds} ${party.name}: ${Math.round(result.rps)} req/s, p99 ${result.p99.toFixed(2)} ms, ${Math.round(result.cpuUs)} µs CPU/req${result.errors ? `, ${result.errors} errors` : ''}\n`,
          );
        } finally {
          await running.stop();
        }
      }
    }
  } finally {
    await stop(backend.child);
  }

  const summary = new Map(
    [...results].map(([name, list]) => [
      name,
      {
        rps: median(list.map(r => r.rps)),
        p99: median(list.map(r => r.p99)),
        cpuUs: median(list.map(r => r.cpuUs)),
        errors: list.reduce((n, r) => n + r.errors, 0),
      },
    ]),
  );
  // ratios are taken within each round (parties run back to back), then the median over rounds
  const ratio = (a, b) => {
    const as = results.get(a);
    const bs = results.get(b);
    if (!as || !bs) return undefined;
    return median(as.map((r, i) => r.rps / bs[i].rps));
  };
  const cpuRatio = (a, b) =>
    summary.get(a) && summary.get(b) && summary.get(b).cpuUs / summary.get(a).cpuUs;
  const fmt = n => Math.round(n).toLocaleString('en-US');
  console.log(
    `\nProxy benchmark: GET of a small JSON body (${'~80 bytes'}), ${concurrency} connections, ${durationS} s per run after ${warmupS} s of warm-up, ${rounds} round(s), parties interleaved; medians; load: ${wrk ? 'wrk -t1' : 'undici Pool (separate process)'}; Node ${process.version}, ${os.cpus().length} CPUs.\n`,
  );
  console.log(
    '| path | req/s | p99 (ms) | CPU µs/req | req/s vs direct | @x/dispatcher req/s vs it | CPU/req: it ÷ @x/dispatcher |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const party of parties) {
    const r = summary.get(party.name);
    if (!r) continue;
    const mine = party.name === 'dispatcher';
    console.log(
      `| ${party.label} | ${fmt(r.rps)} | ${r.p99.toFixed(2)} | ${fmt(r.cpuUs)} | ${ratio(party.name, 'direct').toFixed(2)}x | ${mine ? '' : ratio('dispatcher', party.name).toFixed(2) + 'x'} | ${mine || party.name === 'direct' ? '' : cpuRatio('dispatcher', party.name).toFixed(2) + 'x'} |${r.errors ? ` (${r.errors} errors)` : ''}`,
    );
  }
  const targets = [
    ['proxied req/s >= 0.6x direct', ratio('dispatcher', 'direct'), 0.6],
    ['proxied req/s >= 0.5x direct (issue 13)', ratio('dispatcher', 'direct'), 0.5],
    ['proxied req/s >= 0.8x nginx (issue 13)', ratio('dispatcher', 'nginx'), 0.8],
    ['proxied req/s >= 1.0x the bare Node proxy', ratio('dispatcher', 'bare'), 1.0],
    ['in-process req/s >= 0.9x nginx (issue 13)', ratio('inprocess', 'nginx'), 0.9],
    ['in-process req/s vs the previous build (A/B)', ratio('inprocess', 'base-inprocess'), 1.0],
    ['proxied req/s vs the previous build (A/B)', ratio('dispatcher', 'base'), 1.0],
    ['>= 1.3x @fastify/http-proxy', ratio('dispatcher', 'fastify'), 1.3],
    ['>= 1.3x http-proxy-3', ratio('dispatcher', 'http-proxy-3'), 1.3],
  ];
  console.log('\n| target (DESIGN.md §5) | measured | status |');
  console.log('| --- | ---: | --- |');
  for (const [name, value, goal] of targets) {
    if (value === undefined) continue;
    console.log(`| ${name} | ${value.toFixed(2)}x | ${value >= goal ? 'met' : 'MISSED'} |`);
  }
  if (!nginx) console.log('\n(nginx not installed: its row is skipped)');
}

if (args.role)
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));

switch (args.role) {
  case 'backend':
    await roleBackend();
    break;
  case 'dispatcher':
    await roleDispatcher(
      args.target,
      args.dist,
      args.inprocess === 'true',
      Number(args.pipelining ?? 1),
    );
    break;
  case 'fastify':
    await roleFastify(args.target);
    break;
  case 'bare':
    await roleBare(args.target, Number(args.pipelining ?? 1));
    break;
  case 'http-proxy-3':
    await roleHttpProxy3(args.target);
    break;
  case 'load':
    await roleLoad(args.url, Number(args.c), Number(args.ms), Number(args.warmup));
    break;
  case 'port': {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      console.log(server.address().port);
      server.close();
    });
    break;
  }
  default:
    await main();
}
