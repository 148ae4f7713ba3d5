// Bundles the child-process fixtures (TypeScript importing ../../*.ts) into plain ESM once per run,
// so tests can start real worker processes with `startNodeProcess` without a build of the package.
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'tsup';

const here = dirname(fileURLToPath(import.meta.url));
/** Where the bundles go: inside the package, so `bullmq` and `@x/resilience` resolve from its node_modules. */
export const FIXTURE_OUT = join(here, '..', '..', 'node_modules', '.cache', 'routes-fixtures');

export default async function setup(): Promise<void> {
  const entries = Object.fromEntries(
    readdirSync(join(here, 'fixtures'))
      .filter(f => f.endsWith('.ts'))
      .map(f => [f.replace(/\.ts$/, ''), join(here, 'fixtures', f)]),
  );
  await build({
    entry: entries,
    outDir: FIXTURE_OUT,
    format: ['esm'],
    outExtension: () => ({ js: '.mjs' }),
    platform: 'node',
    target: 'node20',
    dts: false,
    sourcemap: false,
    clean: true,
    silent: true,
    config: false,
    splitting: false,
    external: ['bullmq', '@x/resilience', '@x/testkit'],
  });
}
