import { project } from '../../scripts/vitest.base.js';
import { FiguresReporter } from './reporter/figuresReporter.js';

// The suite measures deadlines and latencies, so its files run one at a time (no CPU contention
// between them) and the root `pnpm test` runs it after every other package.
const config = project(import.meta.dirname, {
  fileParallelism: false,
  testTimeout: 120_000,
  hookTimeout: 60_000,
});
// `project()` sets the default (and JSON) reporters; the figures table prints after them.
const test = config.test as { reporters: unknown[] };
test.reporters = [...test.reporters, new FiguresReporter()];
export default config;
