import { project } from '../../scripts/vitest.base.js';

// The end-to-end and browser tests run the built CLI: globalSetup builds it first (tsup, ~1 s).
const config = project(import.meta.dirname, {
  globalSetup: ['test/globalSetup.ts'],
  testTimeout: 60_000,
  hookTimeout: 60_000,
});
// `src/dashboard.html` is bundled as text by tsup (`loader: { '.html': 'text' }`); the same for
// the unit tests that import it.
(config as { plugins?: unknown[] }).plugins = [
  {
    name: 'html-as-text',
    transform(code: string, id: string) {
      return id.endsWith('.html')
        ? { code: `export default ${JSON.stringify(code)};`, map: null }
        : undefined;
    },
  },
];
export default config;
