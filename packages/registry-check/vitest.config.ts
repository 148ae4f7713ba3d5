import { project } from '../../scripts/vitest.base.js';

// One verdaccio, one publish pass and five scratch installs in beforeAll; the examples then run
// one after the other.
export default project(import.meta.dirname, { testTimeout: 120_000, hookTimeout: 300_000 });
