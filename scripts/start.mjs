#!/usr/bin/env node
/**
 * `pnpm start [-- gateway flags]`: builds only what the gateway needs (`@x/gateway` and the
 * packages it depends on, cached by turbo), quietly (its output is shown only when the build
 * fails), then runs the gateway's CLI in this process, so Ctrl-C drains the gateway and the
 * script exits with the CLI's own code (0 after a drain), not a signal pnpm reports as a failure.
 */
import { spawnSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
process.stderr.write('x-gateway: building @x/gateway and its packages…\n');
const build = spawnSync(
  'turbo',
  [
    'run',
    'build',
    '--filter=@x/gateway...',
    '--output-logs=errors-only',
    '--log-prefix=none',
    '--no-update-notifier',
  ],
  {
    cwd: root,
    env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1', DO_NOT_TRACK: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
    shell: process.platform === 'win32',
    encoding: 'utf8',
  },
);
if (build.status !== 0) {
  process.stderr.write(`${build.stdout ?? ''}${build.stderr ?? ''}`);
  if (build.error) process.stderr.write(`x-gateway: could not run turbo: ${build.error.message}\n`);
  process.stderr.write('x-gateway: the build failed\n');
  process.exit(build.status ?? 1);
}
await import(pathToFileURL(resolve(root, 'apps/gateway/dist/cli.js')).href);
