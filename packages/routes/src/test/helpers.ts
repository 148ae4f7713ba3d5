import { request as httpRequestRaw, type IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { startNodeProcess, type NodeProcess } from '@x/testkit';
import { FIXTURE_OUT } from './globalSetup.js';

/** Starts a bundled fixture (see globalSetup) as a real child process; resolves once it prints READY. */
export function startFixture(
  name: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<NodeProcess> {
  return startNodeProcess(join(FIXTURE_OUT, `${name}.mjs`), {
    args,
    env,
    readyPattern: /^READY/,
    timeoutMs: 15_000,
  });
}

/** Resolves after `ms` of real time. */
export const delay = (ms: number) => new Promise<void>(resolve => setTimeout(resolve, ms));

/** A promise with its resolve function. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>(r => (resolve = r));
  return { promise, resolve };
}

/** A plain `node:http` request (fresh connection each time): status, headers and text body. */
export function httpRequest(
  url: string,
  options: { method?: string; body?: string | Buffer; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string; json: () => any }> {
  return new Promise((resolve, reject) => {
    const req = httpRequestRaw(
      url,
      { method: options.method ?? 'POST', headers: options.headers, agent: false },
      res => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: res.statusCode!,
            headers: res.headers,
            body,
            json: () => JSON.parse(body),
          });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}
