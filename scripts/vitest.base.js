// Shared vitest settings for every workspace project. When VITEST_JSON_DIR is set (by .ci/run),
// each project also writes a JSON report there, which .ci/run sums into "N passed, N failed".
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defineProject } from 'vitest/config';

/** @param {string} dir the package folder @param {import('vitest/config').UserProjectConfigExport['test']} [test] */
export function project(dir, test = {}) {
  const name = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name;
  const jsonDir = process.env.VITEST_JSON_DIR;
  const file = `${name.replace(/[@/]/g, '_')}.json`;
  return defineProject({
    test: {
      name,
      include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
      environment: 'node',
      restoreMocks: true,
      testTimeout: 20_000,
      hookTimeout: 20_000,
      reporters: jsonDir ? ['default', ['json', { outputFile: join(jsonDir, file) }]] : ['default'],
      ...test,
    },
  });
}
