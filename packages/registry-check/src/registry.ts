// A throwaway npm registry (verdaccio) for the round-trip test: publish the workspace's public
// packages as their real tarballs, then install them by name in scratch projects outside the repo.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const require = createRequire(import.meta.url);

/** The repository root. */
export const ROOT = resolve(import.meta.dirname, '../../..');

/** A public (not `private`) workspace package. */
export interface PublicPackage {
  readonly name: string;
  readonly version: string;
  /** Absolute path of the package folder. */
  readonly dir: string;
  /** The folder name under `packages/`. */
  readonly folder: string;
}

/** Every public package under `packages/`, dependencies first (`@x/resilience` has none). */
export function publicPackages(): PublicPackage[] {
  const found: PublicPackage[] = [];
  for (const folder of readdirSync(join(ROOT, 'packages')).sort()) {
    const dir = join(ROOT, 'packages', folder);
    let pkg: { name: string; version: string; private?: boolean };
    try {
      pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    } catch {
      continue;
    }
    if (!pkg.private) found.push({ name: pkg.name, version: pkg.version, dir, folder });
  }
  return found.sort(
    (a, b) => Number(b.name === '@x/resilience') - Number(a.name === '@x/resilience'),
  );
}

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command without a shell; never rejects (the result carries the exit code). */
export function run(
  command: string,
  args: readonly string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<RunResult> {
  return new Promise(done => {
    execFile(
      command,
      args,
      {
        cwd: options.cwd,
        env: { ...process.env, ...options.env },
        timeout: options.timeoutMs ?? 120_000,
        maxBuffer: 16 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        done({
          code,
          stdout: String(stdout),
          stderr: String(stderr) + (error && code === 1 && !stderr ? error.message : ''),
        });
      },
    );
  });
}

/** Throws with the command's output when it failed. */
export function check(result: RunResult, what: string): RunResult {
  if (result.code !== 0) {
    throw new Error(
      `${what} exited with ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`,
    );
  }
  return result;
}

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => done(port));
    });
  });
}

export interface LocalRegistry {
  readonly url: string;
  /** Temp folder holding the storage, the npm config and cache, tarballs and scratch projects. */
  readonly dir: string;
  /** Environment for npm commands that talk to this registry only. */
  readonly npmEnv: NodeJS.ProcessEnv;
  /** The last lines verdaccio printed (uplink errors show up here). */
  log(): string;
  close(): Promise<void>;
}

/**
 * Starts verdaccio on 127.0.0.1 and a free port, storage in a temp folder. `@x/*` is served only
 * from what is published here (anonymous publish, no uplink); every other package is proxied
 * from the npm registry so the scratch projects can install undici, cockatiel and the rest.
 */
export async function startRegistry(): Promise<LocalRegistry> {
  const dir = mkdtempSync(join(tmpdir(), 'x-registry-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  writeFileSync(
    join(dir, 'config.yaml'),
    [
      `storage: ${JSON.stringify(join(dir, 'storage'))}`,
      'uplinks:',
      '  npmjs:',
      '    url: https://registry.npmjs.org/',
      '    timeout: 60s',
      'packages:',
      "  '@x/*':",
      '    access: $all',
      '    publish: $anonymous',
      '    unpublish: $anonymous',
      "  '**':",
      '    access: $all',
      '    proxy: npmjs',
      'server:',
      '  keepAliveTimeout: 60',
      'publish:',
      '  allow_offline: true',
      'web:',
      '  enable: false',
      'log: { type: stdout, format: pretty, level: warn }',
      '',
    ].join('\n'),
  );
  // A token npm can send (npm refuses to publish without one); verdaccio reads it as anonymous.
  writeFileSync(
    join(dir, '.npmrc'),
    `registry=${url}/\n//127.0.0.1:${port}/:_authToken=anonymous\n`,
  );
  const bin = require.resolve('verdaccio/bin/verdaccio');
  const log: string[] = [];
  const child: ChildProcess = spawn(
    process.execPath,
    [bin, '--config', join(dir, 'config.yaml'), '--listen', `127.0.0.1:${port}`],
    {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const keep = (chunk: unknown) => {
    log.push(String(chunk));
    if (log.length > 200) log.shift();
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>(done => child.once('exit', () => done()));

  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const res = await fetch(`${url}/-/ping`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`verdaccio did not start on ${url}:\n${log.join('')}`);
    }
    await new Promise(r => setTimeout(r, 100));
  }

  const npmEnv: NodeJS.ProcessEnv = {
    npm_config_userconfig: join(dir, '.npmrc'),
    npm_config_registry: `${url}/`,
    npm_config_cache: join(dir, 'npm-cache'),
    npm_config_provenance: 'false',
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
    npm_config_loglevel: 'error',
  };
  return {
    url,
    dir,
    npmEnv,
    log: () => log.join('').split('\n').slice(-40).join('\n'),
    async close() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Packs each package with `pnpm pack` (so `workspace:^` becomes a real range, exactly as
 * `changeset publish` does) and publishes the tarball to the registry with npm.
 */
export async function publishAll(
  registry: LocalRegistry,
  packages: readonly PublicPackage[],
): Promise<void> {
  const tarballs = join(registry.dir, 'tarballs');
  mkdirSync(tarballs, { recursive: true });
  await Promise.all(
    packages.map(async pkg => {
      const packed = check(
        await run('pnpm', ['pack', '--pack-destination', tarballs], { cwd: pkg.dir }),
        `pnpm pack (${pkg.name})`,
      );
      const tarball = packed.stdout.trim().split('\n').pop()!.trim();
      check(
        await run('npm', ['publish', tarball, '--access', 'public', '--tag', 'latest'], {
          cwd: registry.dir,
          env: registry.npmEnv,
        }),
        `npm publish (${pkg.name})`,
      );
    }),
  );
}

/** The TypeScript compiler of the workspace. */
export const TSC = require.resolve('typescript/bin/tsc');
