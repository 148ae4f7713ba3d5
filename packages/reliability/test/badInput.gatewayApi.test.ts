import fc from 'fast-check';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BAD_INPUT_TIMEOUT_MS } from '../src/badInputTally.js';
import { startGateway, type RunningGateway } from '../src/gateway.js';

// Bad bodies and queries to the real gateway's JSON API (issue 12, item 8c): each answers 400
// TRANSLATION_FAILED with a message naming the field, what was expected and what was received
// (it said `reportRequest: rejected a object` before), and the same in `issues`.

let gateway: RunningGateway;

beforeAll(async () => {
  gateway = await startGateway();
});

afterAll(async () => {
  await gateway?.close();
});

async function call(
  method: 'GET' | 'POST',
  path: string,
  body?: string,
): Promise<{ status: number; body: any }> {
  const res = await request(new URL(path, gateway.url), {
    method,
    body,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
  });
  return { status: res.statusCode, body: await res.body.json() };
}

const KINDS = 'one of "sales", "inventory", "orders"';

describe(
  'bad input: the gateway API names the refused field',
  { timeout: BAD_INPUT_TIMEOUT_MS },
  () => {
    it.each([
      [
        '/api/reports',
        '{"kind":"nope"}',
        `reportRequest: kind: expected ${KINDS}, received "nope"`,
      ],
      ['/api/reports', '{}', `reportRequest: kind: expected ${KINDS}, received undefined`],
      [
        '/api/reports',
        '{"kind":"sales","rows":0}',
        'reportRequest: rows: expected an integer from 1 to 500, received 0',
      ],
      [
        '/api/reports',
        '{"kind":"sales","delayMs":"5"}',
        'reportRequest: delayMs: expected a number of ms from 0 to 600000, received "5"',
      ],
      [
        '/api/reports',
        '[1]',
        'reportRequest: expected a JSON object like {"kind":"sales"}, received an array',
      ],
      ['/api/report-jobs', '{"kind":7}', `reportJobRequest: kind: expected ${KINDS}, received 7`],
      [
        '/api/report-jobs',
        '{"kind":"sales","runInMs":-1}',
        'reportJobRequest: runInMs: expected a number of ms from 0 to 86400000, received -1',
      ],
    ])('POST %s %s → 400 "%s"', async (path, body, message) => {
      const res = await call('POST', path, body);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('TRANSLATION_FAILED');
      expect(res.body.error.message).toBe(message);
      const field = /^\w+: (\w+): /.exec(message)?.[1] ?? '';
      expect(res.body.error.issues).toEqual([
        { path: field, message: message.replace(/^\w+: (\w+: )?/, '') },
      ]);
    });

    it('valid requests still go through (worker-rpc addresses of the reports workers accepted)', async () => {
      const report = await call('POST', '/api/reports', '{"kind":"sales","rows":2}');
      expect([report.status, report.body.rows?.length]).toEqual([200, 2]);
      const job = await call('POST', '/api/report-jobs', '{"kind":"orders"}');
      expect(job.status).toBe(202);
      const search = await call('GET', '/api/search?q=a&limit=5');
      expect(search.status).toBe(200);
    });

    it('GET /api/search with a bad limit or no q names the parameter', async () => {
      const limit = await call('GET', '/api/search?q=a&limit=abc');
      expect([limit.status, limit.body.error.message]).toEqual([
        400,
        'searchQuery: limit: expected an integer from 1 to 100, received "abc"',
      ]);
      const q = await call('GET', '/api/search');
      expect([q.status, q.body.error.message]).toEqual([
        400,
        'searchQuery: q: expected a search text of 1 to 100 characters, received undefined',
      ]);
    });

    it('property: a report request with any kind outside the three is 400 naming kind and what was received', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.jsonValue().filter(k => !['sales', 'inventory', 'orders'].includes(k as string)),
          async kind => {
            const res = await call('POST', '/api/reports', JSON.stringify({ kind }));
            expect(res.status).toBe(400);
            expect(res.body.error.code).toBe('TRANSLATION_FAILED');
            expect(res.body.error.message).toMatch(
              new RegExp(`^reportRequest: kind: expected ${KINDS}, received .+$`),
            );
            expect(res.body.error.issues[0].path).toBe('kind');
          },
        ),
        { numRuns: 200 },
      );
    });
  },
);
