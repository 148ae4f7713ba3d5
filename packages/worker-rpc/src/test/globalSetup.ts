// Bundles the child-process fixtures once per run (see scripts/bundleFixtures.js).
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleFixtures } from '../../../../scripts/bundleFixtures.js';

const here = dirname(fileURLToPath(import.meta.url));
/** Where the bundles go: inside the package, so `zeromq`, `msgpackr`, ... resolve from its node_modules. */
export const FIXTURE_OUT = join(here, '..', '..', 'node_modules', '.cache', 'wrpc-fixtures');

export default async function setup(): Promise<void> {
  await bundleFixtures({
    fixturesDir: join(here, 'fixtures'),
    outDir: FIXTURE_OUT,
    external: ['zeromq', 'msgpackr', 'undici', '@x/resilience', '@x/testkit'],
  });
}
