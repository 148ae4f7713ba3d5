// Writes schema/dispatch.schema.json from the TypeBox definitions in the build (dist/), the
// single source of truth; src/dispatchSchema.test.ts fails when the committed file drifts.
import { writeFileSync } from 'node:fs';
import { dispatchJsonSchema } from '../dist/index.js';

const file = new URL('../schema/dispatch.schema.json', import.meta.url);
let text = `${JSON.stringify(dispatchJsonSchema(), null, 2)}\n`;
try {
  const prettier = await import('prettier');
  text = await prettier.format(text, { parser: 'json', printWidth: 100 });
} catch {
  // prettier is a dev tool of the repo; without it the plain JSON is written
}
writeFileSync(file, text);
