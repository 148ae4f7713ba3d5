import { project } from '../../scripts/vitest.base.js';

// The end-to-end and browser tests run the built CLI: globalSetup builds it first (tsup, ~1 s).
export default project(import.meta.dirname, {
  globalSetup: ['test/globalSetup.ts'],
  testTimeout: 60_000,
  hookTimeout: 60_000,
});
