// Shared tsup settings: every published package builds ESM + CJS + d.ts from src/index.ts.
// No source maps: they made up 61-64 % of every tarball and pointed at src/ files the tarball
// does not ship; the output is unminified ESM/CJS, readable as it is in a stack trace.
import { defineConfig } from 'tsup';

/** @param {Partial<import('tsup').Options>} [overrides] */
export function nodeLibrary(overrides = {}) {
  return defineConfig({
    entry: ['src/index.ts'],
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: false,
    clean: true,
    target: 'node20',
    platform: 'node',
    splitting: false,
    treeshake: true,
    ...overrides,
  });
}
