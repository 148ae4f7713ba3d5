import { nodeLibrary } from '../../scripts/tsup.base.js';

export default nodeLibrary();
