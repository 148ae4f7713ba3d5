// Writes schema/gateway.config.schema.json from the TypeBox definitions in the build
// (dist/configSchema.js), the single source of truth; src/configSchema.test.ts fails when the
// committed file drifts.
import { writeFileSync } from 'node:fs';
import { gatewayConfigJsonSchema } from '../dist/configSchema.js';

const file = new URL('../schema/gateway.config.schema.json', import.meta.url);
let text = `${JSON.stringify(gatewayConfigJsonSchema(), null, 2)}\n`;
try {
  const prettier = await import('prettier');
  text = await prettier.format(text, { parser: 'json', printWidth: 100 });
} catch {
  // prettier is a dev tool of the repo; without it the plain JSON is written
}
writeFileSync(file, text);
