import { readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import type { Reporter, TestModule } from 'vitest/node';
import { clearFigures, figuresMarkdown, readFigures } from '../src/figures.js';
import { PROFILE } from '../src/profile.js';

const START = '<!-- figures:start -->';
const END = '<!-- figures:end -->';

/**
 * Prints the figures the suite recorded as Markdown tables once the run ends. With
 * `RELIABILITY_REPORT=<file>` (set by `pnpm reliability:long`) it also replaces the part of that
 * file between `<!-- figures:start -->` and `<!-- figures:end -->` with them.
 */
export class FiguresReporter implements Reporter {
  private startedAt = Date.now();

  onTestRunStart(): void {
    this.startedAt = Date.now();
    clearFigures();
  }

  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    let passed = 0;
    let failed = 0;
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
      }
    }
    const seconds = Math.round((Date.now() - this.startedAt) / 1000);
    const heading =
      `Last ${PROFILE} run: ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ` +
      `${cpus().length} cores, ${seconds} s, ${passed} tests passed, ${failed} failed.`;
    const tables = figuresMarkdown(readFigures());
    console.log(`\nReliability figures\n\n${heading}\n\n${tables}`);
    const report = process.env.RELIABILITY_REPORT;
    if (report)
      writeFileSync(
        report,
        replaceFigures(readFileSync(report, 'utf8'), `${heading}\n\n${tables}`),
      );
  }
}

/** `text` with the part between the figure markers replaced by `figures`. */
export function replaceFigures(text: string, figures: string): string {
  const start = text.indexOf(START);
  const end = text.indexOf(END);
  if (start < 0 || end < start) throw new Error(`the report has no ${START} … ${END} markers`);
  return `${text.slice(0, start + START.length)}\n${figures}\n${text.slice(end)}`;
}
