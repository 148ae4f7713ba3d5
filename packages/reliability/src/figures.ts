import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PROFILE } from './profile.js';

/** One measured figure of the suite, as printed after the run and written to `docs/RELIABILITY.md`. */
export interface Figure {
  /** Section of the report, e.g. `faults`, `soak`, `load`. */
  section: string;
  /** What was measured, e.g. `rest-client: calls settled after deadline + 50 ms`. */
  name: string;
  /** The measured value, already formatted or a number. */
  value: string | number;
  /** The requirement it is checked against, e.g. `0` or `>= 99.9%`. */
  target?: string;
  /** Profile the figure was measured with. */
  profile?: string;
}

/** Where figures accumulate during a run (one JSON object per line, appended by every test file). */
export const FIGURES_FILE = join(import.meta.dirname, '..', '.results', 'figures.jsonl');

/** Records a measured figure; the suite's global teardown prints them all as a table. */
export function recordFigure(figure: Figure): void {
  mkdirSync(dirname(FIGURES_FILE), { recursive: true });
  appendFileSync(FIGURES_FILE, `${JSON.stringify({ ...figure, profile: PROFILE })}\n`);
}

/** Deletes the figures of an earlier run. */
export function clearFigures(): void {
  rmSync(FIGURES_FILE, { force: true });
}

/** Every figure recorded so far, in order. */
export function readFigures(): Figure[] {
  if (!existsSync(FIGURES_FILE)) return [];
  return readFileSync(FIGURES_FILE, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map(line => JSON.parse(line) as Figure);
}

/** The figures as a Markdown table per section. */
export function figuresMarkdown(figures: readonly Figure[]): string {
  const sections = new Map<string, Figure[]>();
  for (const figure of figures) {
    const list = sections.get(figure.section) ?? [];
    list.push(figure);
    sections.set(figure.section, list);
  }
  const out: string[] = [];
  for (const [section, list] of sections) {
    out.push(`### ${section}`, '', '| figure | measured | required |', '|---|---:|---|');
    for (const f of list) out.push(`| ${f.name} | ${f.value} | ${f.target ?? ''} |`);
    out.push('');
  }
  return out.join('\n');
}
