import page from './dashboard.html';

/** The dashboard page: `dashboard.html`, self-contained (inline CSS and JS, no external request). */
export function dashboardPage(): string {
  return page;
}
