// The long profile: every reliability test at the full sizes (one million soak calls,
// 30-second load phases, ...). The figures of the run replace those in docs/RELIABILITY.md.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const result = spawnSync('npx', ['vitest', 'run', ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
  env: {
    ...process.env,
    RELIABILITY_PROFILE: 'long',
    RELIABILITY_REPORT: join(root, '..', '..', 'docs', 'RELIABILITY.md'),
  },
});
process.exit(result.status ?? 1);
