import { spawn, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@x/testkit';

/** Where Debian's `nginx` package puts the binary (it is not on a non-root PATH). */
const NGINX_PATHS = ['/usr/sbin/nginx', '/usr/bin/nginx', '/usr/local/sbin/nginx'];

/** The nginx binary, or undefined when none is installed. */
export function nginxBinary(): string | undefined {
  return NGINX_PATHS.find(path => existsSync(path));
}

/** Options of {@link startNginx}. */
export interface NginxOptions {
  /** Upstream servers, `host:port` each. */
  readonly upstreams: readonly string[];
  /** Failed attempts before nginx takes an upstream out for `failTimeoutS`. Default 1. */
  readonly maxFails?: number;
  /** Default 10 s. */
  readonly failTimeoutS?: number;
  /** `proxy_connect_timeout`. Default 1 s. */
  readonly connectTimeoutS?: number;
  /** `proxy_read_timeout`. Default 30 s. */
  readonly readTimeoutS?: number;
}

/** A running nginx load balancer. */
export interface RunningNginx {
  /** `http://127.0.0.1:<port>/`. */
  readonly url: string;
  readonly pid: number;
  /** The generated configuration (for the docs and for failure messages). */
  readonly config: string;
  /** nginx's error log so far. */
  errorLog(): string;
  /** Stops nginx (SIGQUIT, then SIGKILL) and removes its temp dir. */
  close(): Promise<void>;
}

/** The `nginx.conf` of {@link startNginx}: round robin, next upstream on error/timeout. */
export function nginxConfig(dir: string, port: number, options: NginxOptions): string {
  const maxFails = options.maxFails ?? 1;
  const failTimeout = options.failTimeoutS ?? 10;
  const servers = options.upstreams
    .map(u => `    server ${u} max_fails=${maxFails} fail_timeout=${failTimeout}s;`)
    .join('\n');
  return `daemon off;
master_process on;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream gateways {
${servers}
    keepalive 32;
    keepalive_timeout 4s; # below the gateway's 5 s: nginx never reuses a connection it closes
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://gateways;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $remote_addr;
      # a replica that refuses connections or times out: try the next one (a POST too, when
      # nothing was sent to the dead one yet), and leave it out for fail_timeout
      proxy_next_upstream error timeout;
      proxy_next_upstream_tries 3;
      proxy_connect_timeout ${options.connectTimeoutS ?? 1}s;
      proxy_read_timeout ${options.readTimeoutS ?? 30}s;
      proxy_buffering off;
    }
  }
}
`;
}

/**
 * Starts nginx as a non-daemon child with a generated configuration in a temp dir
 * (`nginx -p <dir> -c <dir>/nginx.conf`, error log and pid there too), balancing `upstreams`
 * round robin; resolves once its port accepts connections.
 */
export async function startNginx(options: NginxOptions): Promise<RunningNginx> {
  const binary = nginxBinary();
  if (!binary) throw new Error(`nginx is not installed (looked in ${NGINX_PATHS.join(', ')})`);
  const dir = mkdtempSync(join(tmpdir(), 'x-reliability-nginx-'));
  chmodSync(dir, 0o755); // run as root, nginx's workers are `nobody`: they use the temp paths
  mkdirSync(join(dir, 'logs'));
  const port = await freePort('127.0.0.1');
  const config = nginxConfig(dir, port, options);
  const file = join(dir, 'nginx.conf');
  writeFileSync(file, config);
  const child: ChildProcess = spawn(binary, ['-p', dir, '-c', file, '-e', join(dir, 'error.log')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', chunk => (output += chunk));
  child.stderr!.on('data', chunk => (output += chunk));
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()));
  const errorLog = () => {
    try {
      return readFileSync(join(dir, 'error.log'), 'utf8');
    } catch {
      return '';
    }
  };
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`nginx exited at start: ${output}${errorLog()}`);
    }
    if (await accepts(port)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`nginx did not listen on ${port} within 10 s: ${output}${errorLog()}`);
    }
    await new Promise(resolve => setTimeout(resolve, 50));
  }
  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}/`,
    pid: child.pid!,
    config,
    errorLog,
    close: () =>
      (closing ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGQUIT');
          const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
          await exited;
          clearTimeout(timer);
        }
        rmSync(dir, { recursive: true, force: true });
      })()),
  };
}

function accepts(port: number): Promise<boolean> {
  return new Promise(resolve => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
