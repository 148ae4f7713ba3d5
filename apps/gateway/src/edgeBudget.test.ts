import type { IncomingMessage } from 'node:http';
import { parse, stringify } from 'yaml';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEADLINE_HEADER } from '@x/resilience';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from './config.js';
import { acceptBudget, withinBudget } from './edgeBudget.js';

const backendsDir = mkdtempSync(join(tmpdir(), 'x-gateway-backends-'));
for (const name of ['catalog', 'orders', 'reports'])
  writeFileSync(join(backendsDir, `${name}.js`), '');
afterAll(() => rmSync(backendsDir, { recursive: true, force: true }));
const DEFAULT_TEXT = readFileSync(join(import.meta.dirname, '..', 'gateway.config.yaml'), 'utf8');
const file = '/etc/x/gateway.config.yaml';

const req = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;

describe('the edge budget (x-request-timeout-ms)', () => {
  it('is accepted up to the cap and rewritten for the routes and the front door', () => {
    const capped = req({ [DEADLINE_HEADER]: '60000' });
    acceptBudget(capped, 1_500);
    expect(capped.headers[DEADLINE_HEADER]).toBe('1500');
    const small = req({ [DEADLINE_HEADER]: '300' });
    acceptBudget(small, 1_500);
    expect(small.headers[DEADLINE_HEADER]).toBe('300');
  });

  it('a malformed budget is dropped; none means no deadline from the client', () => {
    const bad = req({ [DEADLINE_HEADER]: 'soon' });
    acceptBudget(bad, 1_500);
    expect(bad.headers[DEADLINE_HEADER]).toBeUndefined();
    const none = req({});
    acceptBudget(none, 1_500);
    expect(none.headers[DEADLINE_HEADER]).toBeUndefined();
  });

  it('withinBudget caps a route timeout by what is left', () => {
    expect(withinBudget(2_000, Infinity)).toBe(2_000);
    expect(withinBudget(2_000, 299.7)).toBe(299);
    expect(withinBudget(2_000, 0)).toBe(1);
    expect(withinBudget(200, 5_000)).toBe(200);
  });

  it('server.maxRequestBudgetMs defaults to dispatcher.requestTimeoutMs and is validated', () => {
    const config = parse(DEFAULT_TEXT) as Record<string, any>;
    expect(parseConfig(stringify(config), { file, backendsDir }).server.maxRequestBudgetMs).toBe(
      config.dispatcher.requestTimeoutMs ?? 10_000,
    );
    config.dispatcher.requestTimeoutMs = 4_000;
    expect(parseConfig(stringify(config), { file, backendsDir }).server.maxRequestBudgetMs).toBe(
      4_000,
    );
    config.server.maxRequestBudgetMs = 1_500;
    expect(parseConfig(stringify(config), { file, backendsDir }).server.maxRequestBudgetMs).toBe(
      1_500,
    );
    config.server.maxRequestBudgetMs = 0;
    expect(() => parseConfig(stringify(config), { file, backendsDir })).toThrow(
      /server\.maxRequestBudgetMs/,
    );
  });
});
