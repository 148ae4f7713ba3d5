import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Resources, Shards, quorum } from '@x/rest-client';

interface User {
  id: string;
  name: string;
}
interface Hits {
  host: string;
  shards: string;
}

// Three JSON hosts on loopback: /users/:id, /health and a sharded /search.
function startHost(name: string) {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const body = url.pathname.startsWith('/users/')
      ? { id: url.pathname.slice('/users/'.length), name: 'Ada' }
      : url.pathname === '/search'
        ? { host: name, shards: url.searchParams.get('shards') }
        : { host: name, ok: true };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  return new Promise<typeof server>(resolve =>
    server.listen(0, '127.0.0.1', () => resolve(server)),
  );
}

async function main(): Promise<void> {
  const servers = await Promise.all(['s0', 's1', 's2'].map(startHost));
  const [h0, h1, h2] = servers.map(s => `http://127.0.0.1:${(s.address() as AddressInfo).port}`);

  const users = new Resources([h0!, h1!, h2!], { timeout: 2_000 });
  console.log(await users.get<User>('/users/42')); // decoded JSON, or throws HttpStatusError
  const health = await users.broadcast('GET', '/health', { mode: quorum(2) });
  console.log(`health: quorum ${health.satisfied ? 'reached' : 'missed'}`);

  // Three shards, each on two of the three hosts: two hosts cover them all.
  const index = new Shards<number>({ [h0!]: [0, 1], [h1!]: [0, 2], [h2!]: [1, 2] });
  const hits = await index.multicast<Hits>(
    [0, 1, 2],
    'GET',
    (_host, keys) => `/search?shards=${keys.join(',')}`,
  );
  console.log(`${hits.responses.size} hosts answered for 3 shards`);
  for (const [shard, host] of hits.assignment) console.log(shard, hits.responses.get(host)?.body);

  await Promise.all([users.close(), index.close()]);
  for (const server of servers) server.close();
}

main().catch(error => {
  console.error(error);
  process.exitCode = 1;
});
