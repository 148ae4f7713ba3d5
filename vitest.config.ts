import { defineConfig } from 'vitest/config';

// One-process watch mode over every workspace project: `pnpm vitest`.
export default defineConfig({ test: { projects: ['packages/*', 'apps/*'] } });
