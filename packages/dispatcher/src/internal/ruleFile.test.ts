import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from '@x/testkit';
import { inProcess } from '../backends/inProcess.js';
import { createDispatcher } from '../createDispatcher.js';
import type { DispatcherEvent } from '../dispatcherEvent.js';
import { responseText } from '../responseTuple.js';

const dir = mkdtempSync(join(tmpdir(), 'x-dispatch-yaml-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const named = (name: string) => inProcess(() => ({ body: name }));

describe('dispatch.yaml hot reload', () => {
  it('reloads changed rules and keeps the old rules when the new file is bad', async () => {
    const file = join(dir, 'dispatch.yaml');
    writeFileSync(file, 'dispatch:\n  - url: "*/api/*"\n    module: api\n');
    const d = createDispatcher({
      modules: {
        default: { versions: { v1: { backend: named('default') } } },
        api: { versions: { v1: { backend: named('api') } } },
        web: { versions: { v1: { backend: named('web') } } },
      },
      rules: { file, pollIntervalMs: 20 },
    });
    const events: DispatcherEvent[] = [];
    d.on(e => events.push(e));
    try {
      await d.start();
      expect(responseText(await d.addRequest({ url: '/api/x' }))).toBe('api');
      expect(responseText(await d.addRequest({ url: '/web/x' }))).toBe('default');

      writeFileSync(
        file,
        'dispatch:\n  - url: "*/web/*"\n    service: web\n  - url: "*/api/*"\n    module: api\n',
      );
      await waitFor(() => events.some(e => e.type === 'rules-reloaded'), { timeoutMs: 5_000 });
      expect(responseText(await d.addRequest({ url: '/web/x' }))).toBe('web');
      expect(d.stats().rules).toBe(2);

      for (const bad of [
        'dispatch: [',
        'dispatch:\n  - url: "*/x/*"\n    module: ghost\n',
        'dispatch:\n  - url: "no-path"\n    module: web\n',
      ]) {
        const failures = events.filter(e => e.type === 'rules-reload-failed').length;
        writeFileSync(file, bad + '\n'.repeat(failures + 1)); // a different size, so the change is seen
        await waitFor(
          () => events.filter(e => e.type === 'rules-reload-failed').length > failures,
          { timeoutMs: 5_000 },
        );
        expect(responseText(await d.addRequest({ url: '/web/x' }))).toBe('web'); // old rules still in force
        expect(d.explain({ url: '/api/y' }).rule).toMatchObject({ index: 1, module: 'api' });
      }
      const failed = events.filter(e => e.type === 'rules-reload-failed');
      expect(
        failed.every(
          e =>
            e.type === 'rules-reload-failed' &&
            (e.error as { code?: string }).code === 'INVALID_DISPATCH_RULE',
        ),
      ).toBe(true);

      rmSync(file);
      await waitFor(() => events.filter(e => e.type === 'rules-reload-failed').length === 4, {
        timeoutMs: 5_000,
      });
      expect(responseText(await d.addRequest({ url: '/web/x' }))).toBe('web');

      writeFileSync(file, 'dispatch:\n  - url: "*/api/*"\n    module: web\n');
      expect(await d.reloadRules()).toBe(true);
      expect(responseText(await d.addRequest({ url: '/api/x' }))).toBe('web');
      expect(await d.reloadRules()).toBe(false); // unchanged
    } finally {
      await d.close();
    }
  });

  it('reloadRules needs a file', async () => {
    const d = createDispatcher({
      modules: { default: { versions: { v1: { backend: named('x') } } } },
    });
    await expect(d.reloadRules()).rejects.toMatchObject({ code: 'INVALID_CONFIG' });
    await d.close();
  });
});
