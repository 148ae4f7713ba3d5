import { InvalidConfigError, InvalidRequestError } from '../errors.js';
import type { RouteDecision } from '../routeDecision.js';
import type { DispatchRequest, InstanceInfo } from '../types.js';

/** The dispatcher methods the admin API calls (a `Dispatcher` is one). */
export interface AdminTarget {
  getModuleNames(): string[];
  getVersions(module: string): string[];
  getDefaultVersion(module: string): string;
  getNumInstances(module: string, version: string): number;
  setNumInstances(module: string, version: string, instances: number): Promise<void>;
  startVersion(module: string, version: string): Promise<void>;
  stopVersion(module: string, version: string): Promise<void>;
  getInstances(module: string, version: string): InstanceInfo[];
  explain(request: DispatchRequest): RouteDecision;
  stats(): unknown;
}

/** A minimal JSON admin API over the public dispatcher methods (the token is checked before). */
export async function adminApi(
  dispatcher: AdminTarget,
  method: string,
  path: string,
  query: URLSearchParams,
  body: unknown,
): Promise<{ status: number; body: unknown }> {
  const parts = path.split('/').filter(Boolean).map(decodeSegment);
  // GET /modules
  if (parts.length === 1 && parts[0] === 'modules' && method === 'GET') {
    return {
      status: 200,
      body: {
        modules: dispatcher.getModuleNames().map(name => ({
          name,
          defaultVersion: dispatcher.getDefaultVersion(name),
          versions: dispatcher.getVersions(name),
        })),
      },
    };
  }
  if (parts.length === 1 && parts[0] === 'stats' && method === 'GET')
    return { status: 200, body: dispatcher.stats() };
  if (parts.length === 1 && parts[0] === 'explain' && method === 'GET') {
    const url = query.get('url') ?? '/';
    const host = query.get('host');
    const cookie = query.get('cookie');
    const headers: Array<[string, string]> = [];
    if (host) headers.push(['host', host]);
    if (cookie) headers.push(['cookie', cookie]);
    const decision = dispatcher.explain({ url, headers, sourceIp: query.get('ip') ?? undefined });
    return { status: 200, body: decision };
  }
  // /modules/:m/versions/:v/(instances|start|stop)
  if (parts.length === 5 && parts[0] === 'modules' && parts[2] === 'versions') {
    const module = parts[1]!;
    const version = parts[3]!;
    const action = parts[4];
    if (action === 'instances' && method === 'GET') {
      return { status: 200, body: { instances: dispatcher.getInstances(module, version) } };
    }
    if (action === 'instances' && (method === 'PUT' || method === 'POST')) {
      const count = (body as { instances?: unknown } | undefined)?.instances;
      if (typeof count !== 'number' || !Number.isInteger(count) || count < 0)
        throw new InvalidRequestError(
          `instances: expected an integer >= 0 (body {"instances": <n>}), got ${describe(count)}`,
        );
      try {
        await dispatcher.setNumInstances(module, version, count);
      } catch (error) {
        // the count comes from the client: out of the version's range is its mistake (400)
        if (error instanceof InvalidConfigError)
          throw new InvalidRequestError(error.message, { cause: error });
        throw error;
      }
      return { status: 200, body: { instances: dispatcher.getNumInstances(module, version) } };
    }
    if (action === 'start' && method === 'POST') {
      await dispatcher.startVersion(module, version);
      return { status: 200, body: { started: true } };
    }
    if (action === 'stop' && method === 'POST') {
      await dispatcher.stopVersion(module, version);
      return { status: 200, body: { stopped: true } };
    }
  }
  return {
    status: 404,
    body: { error: { code: 'NOT_FOUND', message: `no admin endpoint ${method} ${path}` } },
  };
}

/** A value as an error message shows it (`"x"`, `1e9`, `undefined`). */
function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** A percent-decoded path segment; malformed escapes (`%E0%A4%A`) are `INVALID_REQUEST`, not a 500. */
function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new InvalidRequestError(
      `malformed percent-encoding in admin path segment ${JSON.stringify(segment)}`,
    );
  }
}
