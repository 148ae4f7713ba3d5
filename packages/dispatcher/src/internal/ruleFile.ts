import { readFileSync, statSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import {
  parseDispatchYaml,
  type DispatchRuleOptions,
  type DispatchRuleSet,
} from '../dispatchRules.js';
import { InvalidDispatchRuleError } from '../errors.js';

/**
 * A `dispatch.yaml` file: loaded synchronously at creation (a bad file then throws), then
 * re-read when its mtime, size or inode change. A bad new version is reported and the previous
 * rules stay in force (App Engine's behaviour).
 */
export class RuleFile {
  private signature = '';

  constructor(
    readonly path: string,
    private readonly options: DispatchRuleOptions,
  ) {}

  /** Reads and compiles the file now (throws INVALID_DISPATCH_RULE). */
  loadSync(): DispatchRuleSet {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (error) {
      throw new InvalidDispatchRuleError(
        `cannot read ${this.path}: ${(error as Error).message}`,
        undefined,
        { cause: error },
      );
    }
    const rules = parseDispatchYaml(text, this.options);
    this.signature = this.currentSignatureSync();
    return rules;
  }

  private currentSignatureSync(): string {
    try {
      const s = statSync(this.path);
      return `${s.ino}:${s.size}:${s.mtimeMs}`;
    } catch {
      return '';
    }
  }

  /**
   * Checks the file: undefined when unchanged, the new rules when it changed and parses; throws
   * INVALID_DISPATCH_RULE when it changed and does not (the caller keeps the old rules).
   */
  async poll(): Promise<DispatchRuleSet | undefined> {
    let signature: string;
    try {
      const s = await stat(this.path);
      signature = `${s.ino}:${s.size}:${s.mtimeMs}`;
    } catch (error) {
      if (this.signature === 'missing') return undefined;
      this.signature = 'missing';
      throw new InvalidDispatchRuleError(
        `cannot read ${this.path}: ${(error as Error).message}`,
        undefined,
        { cause: error },
      );
    }
    if (signature === this.signature) return undefined;
    this.signature = signature;
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      throw new InvalidDispatchRuleError(
        `cannot read ${this.path}: ${(error as Error).message}`,
        undefined,
        { cause: error },
      );
    }
    return parseDispatchYaml(text, this.options);
  }
}
