import type { IncomingMessage, ServerResponse } from 'node:http';
import FindMyWay from 'find-my-way';
import { RouteConfigError } from './errors.js';

/** Path parameters of a matched request (`/api/orders/:id` → `{ id }`, a wildcard → `{ '*': … }`). */
export type PathParams = Readonly<Record<string, string>>;

/** A request the router matched, handed to the {@link HttpMount} that serves it. */
export interface HttpMatch {
  /** The raw path, without the query string. */
  readonly path: string;
  /** The raw query string, without `?` (`''` when none). */
  readonly queryString: string;
  /** The decoded path parameters. */
  readonly params: PathParams;
}

/** What an {@link HttpRouter} serves: a path pattern, its methods and the request handler. */
export interface HttpMount {
  readonly name: string;
  /** A find-my-way pattern: `/api/orders`, `/api/orders/:id`, `/files/*`. */
  readonly path: string;
  /** Upper-case methods, or `['*']` for any method. */
  readonly methods: readonly string[];
  /** Serves a matched request (the path matched and the method is one of {@link methods}). */
  serve(req: IncomingMessage, res: ServerResponse, match: HttpMatch): void;
}

/** The mounts of one path pattern, by method. */
interface PathEntry {
  readonly pattern: string;
  readonly byMethod: Map<string, HttpMount>;
  any: HttpMount | undefined;
  /** The `Allow` header of a 405 answer. */
  allow: string;
}

const noop = (): void => {};

/**
 * Routes HTTP requests to the entrypoints mounted on it, matching each request's path once with
 * `find-my-way` (a radix tree): path patterns (`/api/orders/:id`; a parameter is never empty), wildcards
 * (`/files/*`) and methods. Give the same router to several `httpEntrypoint({ router })` and mount `router.handler`
 * (404 for unknown paths) or `router.handle` (returns false for unknown paths, so your server
 * can go on) in a `node:http` server. A known path with a method no entrypoint takes gets 405 with
 * `Allow`.
 */
export class HttpRouter {
  private readonly tree = FindMyWay({ ignoreTrailingSlash: false, caseSensitive: true });
  private readonly entries = new Map<string, PathEntry>();

  /** Adds an entrypoint; its path and method must not be taken already. */
  mount(mount: HttpMount): void {
    let entry = this.entries.get(mount.path);
    if (entry === undefined) {
      entry = { pattern: mount.path, byMethod: new Map(), any: undefined, allow: '' };
      try {
        this.tree.all(mount.path, noop, entry);
      } catch (error) {
        throw new RouteConfigError(
          `path: expected a pattern not served yet, got ${JSON.stringify(mount.path)} (${(error as Error).message})`,
          { cause: error },
        );
      }
      this.entries.set(mount.path, entry);
    }
    for (const method of mount.methods) {
      const taken = method === '*' ? entry.any : entry.byMethod.get(method);
      if (taken !== undefined && taken !== mount)
        throw new RouteConfigError(
          `${mount.name}: ${method} ${mount.path} is already served by ${taken.name}`,
        );
    }
    for (const method of mount.methods) {
      if (method === '*') entry.any = mount;
      else entry.byMethod.set(method, mount);
    }
    entry.allow = [...entry.byMethod.keys()].join(', ');
  }

  /** A `node:http` request listener: the mounted entrypoints' requests, 404 for any other path. */
  readonly handler = (req: IncomingMessage, res: ServerResponse): void => {
    if (this.handle(req, res)) return;
    req.resume();
    if (res.headersSent || res.destroyed) return;
    const body = JSON.stringify({ error: { code: 'NOT_FOUND', message: 'not found' } });
    res.writeHead(404, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
  };

  /**
   * Serves the request when its path is mounted (returns true; a method not taken there is
   * answered 405 with `Allow`), else returns false and does nothing.
   */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const method = req.method ?? 'GET';
    // every pattern is registered for every method, so one lookup tells 404 from 405
    const found = this.tree.find(method as FindMyWay.HTTPMethod, path);
    if (found === null || hasEmptyParam(found.params)) return false;
    const entry = found.store as PathEntry;
    const mount = entry.byMethod.get(method) ?? entry.any;
    if (mount === undefined) {
      methodNotAllowed(req, res, entry.allow);
      return true;
    }
    mount.serve(req, res, {
      path,
      queryString: q === -1 ? '' : url.slice(q + 1),
      params: found.params as PathParams,
    });
    return true;
  }
}

/** `/api/orders/` does not match `/api/orders/:id`: a parameter is never empty (a wildcard may be). */
function hasEmptyParam(params: Record<string, string | undefined>): boolean {
  for (const key in params) if (params[key] === '' && key !== '*') return true;
  return false;
}

function methodNotAllowed(req: IncomingMessage, res: ServerResponse, allow: string): void {
  req.resume();
  if (res.headersSent || res.destroyed) return;
  const body = JSON.stringify({
    error: { code: 'METHOD_NOT_ALLOWED', message: `use ${allow.replaceAll(', ', ' or ')}` },
  });
  res.writeHead(405, {
    allow,
    connection: 'close',
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

/** A new {@link HttpRouter}. */
export function httpRouter(): HttpRouter {
  return new HttpRouter();
}
