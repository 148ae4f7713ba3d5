// Every public package's README shows its examples/quickstart.ts verbatim (the file that
// registry.test.ts runs from a registry install), behind an `<!-- example: … -->` marker.
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { checkReadme } from '../../../scripts/readme-examples.mjs';
import { publicPackages } from '../src/registry.js';

describe.each(publicPackages().map(pkg => [pkg.name, pkg] as const))('%s', (_name, pkg) => {
  test('README example is examples/quickstart.ts, verbatim', () => {
    const { examples, problems } = checkReadme(join(pkg.dir, 'README.md')) as {
      examples: string[];
      problems: string[];
    };
    expect(examples).toContain('examples/quickstart.ts');
    expect(problems).toEqual([]);
  });
});
