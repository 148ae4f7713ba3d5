import { nodeLibrary } from '../../scripts/tsup.base.js';

// `stripInternal` keeps the engine behind `Resources` (marked @internal) out of the public types.
export default nodeLibrary({ dts: { compilerOptions: { stripInternal: true } } });
