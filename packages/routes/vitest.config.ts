import { project } from '../../scripts/vitest.base.js';

export default project(import.meta.dirname, { globalSetup: ['./src/test/globalSetup.ts'] });
