import { project } from '../../scripts/vitest.base.js';

export default project(import.meta.dirname);
