// Sums the vitest JSON reports written by each workspace project (VITEST_JSON_DIR) and prints
// "N passed, N failed" alone on the last line. Exits 1 when anything failed or nothing ran.
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2] ?? '.vitest-reports';
let passed = 0;
let failed = 0;
let skipped = 0;
const failures = [];
const files = existsSync(dir) ? readdirSync(dir).filter(f => f.endsWith('.json')) : [];
for (const file of files) {
  const report = JSON.parse(readFileSync(join(dir, file), 'utf8'));
  // A file that failed outside any test (import error, hook failure) counts as one failure.
  const brokenFiles = (report.testResults ?? []).filter(
    file => file.status === 'failed' && !(file.assertionResults ?? []).some(t => t.status === 'failed'),
  ).length;
  for (const result of report.testResults ?? []) {
    const where = String(result.name ?? '').replace(/^.*?\/(packages|apps)\//, '$1/');
    const failedTests = (result.assertionResults ?? []).filter(t => t.status === 'failed');
    for (const t of failedTests) {
      failures.push(`FAILED ${where} > ${t.fullName ?? t.title}: ${String(t.failureMessages?.[0] ?? '').split('\n')[0]}`);
    }
    if (result.status === 'failed' && failedTests.length === 0) {
      failures.push(`FAILED ${where}: ${String(result.message ?? '').split('\n')[0]}`);
    }
  }
  passed += report.numPassedTests ?? 0;
  failed += (report.numFailedTests ?? 0) + brokenFiles;
  skipped += (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
  console.log(
    `${file.replace(/\.json$/, '')}: ${report.numPassedTests} passed, ${report.numFailedTests} failed`,
  );
}
for (const line of failures) console.log(line.slice(0, 400));
if (skipped) console.log(`(${skipped} skipped)`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
