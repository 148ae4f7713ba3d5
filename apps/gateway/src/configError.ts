import type { ConfigIssue } from './configCheck.js';

/** The configuration file is unreadable or invalid; `issues` name every bad field. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'INVALID_CONFIG';

  constructor(
    readonly file: string,
    readonly issues: readonly ConfigIssue[],
  ) {
    super(
      `invalid configuration in ${file}:\n` +
        issues.map(i => `  - ${i.path ? `${i.path}: ` : ''}${i.message}`).join('\n'),
    );
  }
}
