/**
 * Which shard keys an instance holds: instance `i` holds keys `i, i+1, …, i+replicas-1` (mod
 * `count`). With 3 instances, 3 keys and 2 replicas: 0 → [0, 1], 1 → [1, 2], 2 → [2, 0], so
 * every key lives on two instances and any one instance can die without losing a key. The
 * placement depends only on the instance id, so adding instances never moves data.
 */
export function shardsOf(instance: number, count: number, replicas: number): number[] {
  const keys: number[] = [];
  for (let j = 0; j < Math.min(replicas, count); j++) keys.push((instance + j) % count);
  return keys;
}

/** The shard key of a catalog item id. */
export function shardOfItem(id: number, count: number): number {
  return id % count;
}
