import { join } from 'node:path';
import { startNodeProcess, type NodeProcess } from '@x/testkit';

/** The folder of the child-process fixture scripts (`packages/reliability/fixtures`). */
export const FIXTURES_DIR = join(import.meta.dirname, '..', 'fixtures');

/**
 * Starts `fixtures/<name>.mjs` as a real child process and resolves once it prints a line starting
 * with `READY`; `ready` is the rest of that line (e.g. the address it serves on).
 */
export async function startFixture(
  name: string,
  args: readonly string[] = [],
  env: Record<string, string> = {},
): Promise<NodeProcess & { ready: string }> {
  const child = await startNodeProcess(join(FIXTURES_DIR, `${name}.mjs`), {
    args: [...args],
    env,
    readyPattern: /^READY ?(.*)$/,
    timeoutMs: 15_000,
  });
  return Object.assign(child, { ready: child.match?.[1] ?? '' });
}
