// Bundles a package's child-process test fixtures (TypeScript importing the package's sources)
// into plain ESM once per test run, so tests can start real processes without building the package.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'tsup';

/**
 * @param {{ fixturesDir: string, outDir: string, external: string[] }} options
 *   every `*.ts` in `fixturesDir` becomes `outDir/<name>.mjs`; `external` stay imports (resolved
 *   from the package's node_modules, which is why `outDir` should live inside the package).
 */
export async function bundleFixtures({ fixturesDir, outDir, external }) {
  const entries = Object.fromEntries(
    readdirSync(fixturesDir)
      .filter(f => f.endsWith('.ts'))
      .map(f => [f.replace(/\.ts$/, ''), join(fixturesDir, f)]),
  );
  await build({
    entry: entries,
    outDir,
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
    external,
  });
}
