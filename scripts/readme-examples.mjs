// Keeps README examples identical to runnable files. In a package README, a marker line
//   <!-- example: examples/quickstart.ts -->
// must be followed (after at most one blank line) by a fenced code block whose content is exactly that file (relative to the
// package folder). The files run in CI (packages/registry-check), so a README can't drift from
// code that runs.
//   node scripts/readme-examples.mjs          check every package README, exit 1 on drift
//   node scripts/readme-examples.mjs --write  rewrite the blocks from the files
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const MARKER = /^<!-- example: (\S+) -->$/;

/**
 * Checks (or with `write`, fixes) the example blocks of one README.
 * @param {string} readmePath
 * @param {{ write?: boolean }} [options]
 * @returns {{ examples: string[], problems: string[] }} the example files found, and what is wrong
 */
export function checkReadme(readmePath, { write = false } = {}) {
  const dir = dirname(readmePath);
  const lines = readFileSync(readmePath, 'utf8').split('\n');
  const examples = [];
  const problems = [];
  let changed = false;
  for (let i = 0; i < lines.length; i++) {
    const match = MARKER.exec(lines[i]);
    if (!match) continue;
    const file = match[1];
    examples.push(file);
    const path = join(dir, file);
    if (!existsSync(path)) {
      problems.push(`${readmePath}:${i + 1}: ${file} does not exist`);
      continue;
    }
    const expected = readFileSync(path, 'utf8').replace(/\n$/, '').split('\n');
    const start = lines[i + 1] === '' ? i + 2 : i + 1; // prettier puts a blank line after the marker
    const fence = /^(```+)\w*$/.exec(lines[start] ?? '');
    const close = fence ? lines.indexOf(fence[1], start + 1) : -1;
    if (!fence || close < 0) {
      problems.push(`${readmePath}:${i + 1}: the marker is not followed by a fenced code block`);
      continue;
    }
    const actual = lines.slice(start + 1, close);
    if (actual.join('\n') === expected.join('\n')) continue;
    if (write) {
      lines.splice(start + 1, close - (start + 1), ...expected);
      changed = true;
    } else {
      const at = actual.findIndex((line, k) => line !== expected[k]);
      const k = at < 0 ? Math.min(actual.length, expected.length) : at;
      problems.push(
        `${readmePath}:${start + 2 + k}: the code block differs from ${file} (line ${k + 1}: ` +
          `README ${JSON.stringify(actual[k] ?? '<end>')}, file ${JSON.stringify(expected[k] ?? '<end>')}); ` +
          'run `node scripts/readme-examples.mjs --write`',
      );
    }
  }
  if (changed) writeFileSync(readmePath, lines.join('\n'));
  return { examples, problems };
}

/** The README of every public package under packages/. */
export function publicReadmes() {
  return readdirSync(join(ROOT, 'packages'))
    .sort()
    .map(folder => join(ROOT, 'packages', folder))
    .filter(dir => existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'README.md')))
    .filter(dir => !JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).private)
    .map(dir => join(dir, 'README.md'));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const write = process.argv.includes('--write');
  let failed = false;
  for (const readme of publicReadmes()) {
    const { examples, problems } = checkReadme(readme, { write });
    if (examples.length === 0) problems.push(`${readme}: no <!-- example: … --> block`);
    for (const problem of problems) console.error(problem);
    failed ||= problems.length > 0;
  }
  if (failed) process.exit(1);
  console.log(write ? 'README examples written' : 'README examples match their files');
}
