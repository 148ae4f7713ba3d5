/** Bounds of an {@link OutputTail}. */
export interface OutputTailLimits {
  /** Most lines kept. Default 20. */
  readonly lines?: number;
  /** Most bytes (UTF-16 code units) kept. Default 4 096. */
  readonly bytes?: number;
}

/**
 * The last lines a child process wrote (bounded by lines and bytes): what a start error shows so
 * "Cannot find module" is visible without the terminal.
 */
export class OutputTail {
  private text = '';
  private readonly maxLines: number;
  private readonly maxBytes: number;

  constructor(limits: OutputTailLimits = {}) {
    this.maxLines = limits.lines ?? 20;
    this.maxBytes = limits.bytes ?? 4_096;
  }

  /** Appends a chunk of output; memory stays bounded by twice `bytes`. */
  push(chunk: Buffer | string): void {
    this.text += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    if (this.text.length > 2 * this.maxBytes) this.text = this.text.slice(-this.maxBytes);
  }

  /** The last `lines` lines within `bytes`, trimmed; `''` when nothing was written. */
  toString(): string {
    const lines = this.text.slice(-this.maxBytes).trimEnd().split('\n');
    return lines.slice(-this.maxLines).join('\n').trim();
  }
}
