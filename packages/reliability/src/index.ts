export { PROFILE, sized } from './profile.js';
export type { Profile } from './profile.js';
export {
  FIGURES_FILE,
  clearFigures,
  figuresMarkdown,
  readFigures,
  recordFigure,
} from './figures.js';
export type { Figure } from './figures.js';
export { percent, quantile, summarize } from './stats.js';
export type { LatencySummary } from './stats.js';
