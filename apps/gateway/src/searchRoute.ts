import {
  httpEntrypoint,
  route,
  schema,
  validator,
  type HttpEntrypoint,
  type Route,
} from '@x/routes';
import type { CatalogItem } from './catalogItems.js';
import type { CatalogShards } from './catalogShards.js';
import { withinBudget } from './edgeBudget.js';
import { GatewayError } from './gatewayError.js';

/** `GET /api/search?q=lamp&limit=20`. */
export interface SearchQuery {
  readonly q: string;
  readonly limit: number;
}

/** What a catalog instance answers to `GET /search`. */
interface ShardAnswer {
  readonly instance: string;
  readonly results: ReadonlyArray<CatalogItem & { readonly shard: number }>;
}

/** The merged answer of `/api/search`. */
export interface SearchResult {
  readonly query: string;
  readonly total: number;
  readonly results: ReadonlyArray<
    CatalogItem & { readonly shard: number; readonly instance: string }
  >;
  /** Which instance answered for each shard key. */
  readonly shards: ReadonlyArray<{ readonly shard: number; readonly instance: string }>;
  /** Keys no live replica could serve (the results miss their items). */
  readonly uncovered: readonly number[];
  readonly partial: boolean;
}

/** Validates the query string (a `schema` translator: failures answer 400 with this message). */
export const searchQuery = validator<SearchQuery>((value, refuse) => {
  const query = value as Record<string, string | undefined>;
  const q = (query.q ?? '').trim();
  if (q === '' || q.length > 100) refuse('q', 'a search text of 1 to 100 characters', query.q);
  const limit = query.limit === undefined ? 20 : Number(query.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 100)
    refuse('limit', 'an integer from 1 to 100', query.limit);
  return { q, limit };
});

/**
 * `GET /api/search?q=` as an `@x/routes` route behind an HTTP entrypoint. The target fans out
 * with `Shards.multicast` from `@x/rest-client`: the fewest catalog instances covering every
 * shard key, the keys of a failed instance re-covered by their replicas. Results are merged by
 * the key → instance assignment, so an item held by two replicas is counted once.
 */
export function searchRoute(
  catalog: CatalogShards,
  options: {
    readonly maxDeadlineMs?: number;
    readonly totalMs?: number;
    readonly perTryMs?: number;
  } = {},
): {
  route: Route<any, any, any, any>;
  entrypoint: HttpEntrypoint<unknown>;
} {
  const entrypoint = httpEntrypoint({
    path: '/api/search',
    method: 'GET',
    message: 'query',
    exposeErrors: true,
    ...(options.maxDeadlineMs === undefined ? {} : { maxDeadlineMs: options.maxDeadlineMs }),
  }) as HttpEntrypoint<unknown>;
  const search = route({
    entrypoint,
    translators: [schema(searchQuery, 'searchQuery')],
    metricLabel: 'search',
    target: async (query: SearchQuery, ctx): Promise<SearchResult> => {
      const client = catalog.current();
      if (!client) throw new GatewayError('NO_CATALOG', 503, 'no catalog instance is ready yet');
      // Each host answers for every key it holds (a constant path, not `(host, keys) => …`):
      // when a host fails, `multicast` re-covers its keys and may assign them to a host that
      // already answered, without asking it again; that answer must include those keys too.
      const result = await client.multicast<ShardAnswer>(
        catalog.keys(),
        'GET',
        `/search?q=${encodeURIComponent(query.q)}`,
        {
          mode: 'settled',
          signal: ctx.signal,
          // the client's budget (if any) caps the multicast; each request carries what is left
          ...(ctx.remainingMs === Infinity || options.totalMs === undefined
            ? {}
            : {
                timeout: {
                  total: withinBudget(options.totalMs, ctx.remainingMs),
                  ...(options.perTryMs === undefined ? {} : { perTry: options.perTryMs }),
                },
              }),
        },
      );
      const results: Array<SearchResult['results'][number]> = [];
      const shards: Array<SearchResult['shards'][number]> = [];
      for (const [shard, host] of [...result.assignment].sort((a, b) => a[0] - b[0])) {
        const answer = result.responses.get(host)?.body;
        const instance = answer?.instance ?? catalog.instanceOf(host) ?? host;
        shards.push({ shard, instance });
        for (const item of answer?.results ?? [])
          if (item.shard === shard) results.push({ ...item, instance });
      }
      if (shards.length === 0)
        throw new GatewayError(
          'NO_REPLICA',
          503,
          `no catalog replica answered (uncovered shards: ${result.uncovered.join(', ')})`,
        );
      results.sort((a, b) => a.id - b.id);
      return {
        query: query.q,
        total: results.length,
        results: results.slice(0, query.limit),
        shards,
        uncovered: [...result.uncovered],
        partial: result.uncovered.length > 0,
      };
    },
  });
  return { route: search, entrypoint };
}
