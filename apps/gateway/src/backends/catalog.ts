/**
 * Demo `catalog` instance: a JSON search service holding the catalog items of its shard keys
 * (`SHARD_COUNT`, `SHARD_REPLICAS` and the instance id decide which, see `shardPlan.ts`).
 *
 * - `GET /search?q=&shards=0,1` → `{ instance, shards, results: [{ id, name, category, price, shard }] }`
 * - `GET /catalog/info` → which keys and how many items this instance holds
 * - `GET /catalog/items` → this instance's items
 *
 * `CATALOG_LATENCY_MS` (default 2) is each search's base latency; `CATALOG_SLOW_INSTANCE` names
 * one instance whose searches take `CATALOG_SLOW_MS` (default 300) more: a slow shard, for the
 * dashboard's waterfall and the tests.
 */
import { instanceEnv, serveHttp, sleep } from '../backendRuntime.js';
import { sendJson } from '../sendJson.js';
import { catalogItems, matches } from '../catalogItems.js';
import { shardOfItem, shardsOf } from '../shardPlan.js';

const env = instanceEnv(8101);
const count = Number(process.env.SHARD_COUNT ?? 3);
const replicas = Number(process.env.SHARD_REPLICAS ?? 2);
const latencyMs = Number(process.env.CATALOG_LATENCY_MS ?? 2);
const slowMs =
  process.env.CATALOG_SLOW_INSTANCE === env.instance
    ? Number(process.env.CATALOG_SLOW_MS ?? 300)
    : 0;
const held = shardsOf(Number(env.instance) || 0, count, replicas);
const items = catalogItems()
  .map(item => ({ ...item, shard: shardOfItem(item.id, count) }))
  .filter(item => held.includes(item.shard));

serveHttp(env, async (req, res, url) => {
  if (req.method !== 'GET')
    return sendJson(res, 405, { error: { code: 'METHOD_NOT_ALLOWED', message: 'GET only' } });
  if (url.pathname === '/search') {
    const q = url.searchParams.get('q') ?? '';
    const asked = (url.searchParams.get('shards') ?? '').split(',').filter(Boolean).map(Number);
    const keys = asked.length ? asked.filter(k => held.includes(k)) : held;
    if (latencyMs > 0) await sleep(latencyMs * (0.5 + Math.random()));
    if (slowMs > 0) await sleep(slowMs);
    const results = items.filter(item => keys.includes(item.shard) && matches(item, q));
    return sendJson(res, 200, { instance: env.instance, pid: process.pid, shards: keys, results });
  }
  if (url.pathname === '/catalog/info')
    return sendJson(res, 200, {
      instance: env.instance,
      pid: process.pid,
      shards: held,
      items: items.length,
    });
  if (url.pathname === '/catalog/items')
    return sendJson(res, 200, { instance: env.instance, items });
  sendJson(res, 404, { error: { code: 'NOT_FOUND', message: `no ${url.pathname} on catalog` } });
});
