// Shared tsup settings: every published package builds ESM + CJS + d.ts from src/index.ts.
import { defineConfig } from 'tsup';

/** @param {Partial<import('tsup').Options>} [overrides] */
export function nodeLibrary(overrides = {}) {
  return defineConfig({
    entry: ['src/index.ts'],
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: true,
    target: 'node20',
    platform: 'node',
    splitting: false,
    treeshake: true,
    ...overrides,
  });
}
