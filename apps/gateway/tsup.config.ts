import { defineConfig } from 'tsup';

export default defineConfig({
  // configSchema.js: scripts/writeSchema.mjs writes schema/gateway.config.schema.json from it.
  entry: ['src/cli.ts', 'src/backends/*.ts', 'src/configSchema.ts'],
  format: ['esm'],
  target: 'node20',
  platform: 'node',
  clean: true,
  sourcemap: true,
  splitting: false,
  // The dashboard is a plain HTML file (inline CSS and JS), bundled into cli.js as a string.
  loader: { '.html': 'text' },
});
