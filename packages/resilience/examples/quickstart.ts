import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { faultTolerant } from '@x/resilience';

interface User {
  id: string;
  name: string;
  servedBy: string;
}

// A users service on loopback: replica "a" answers 503 to every request, replica "b" works.
function startReplica(name: string, healthy: boolean) {
  const server = createServer((req, res) => {
    const id = req.url?.split('/').pop() ?? '';
    res.writeHead(healthy ? 200 : 503, { 'content-type': 'application/json' });
    res.end(JSON.stringify(healthy ? { id, name: 'Ada', servedBy: name } : { error: 'busy' }));
  });
  return new Promise<typeof server>(resolve =>
    server.listen(0, '127.0.0.1', () => resolve(server)),
  );
}

async function main(): Promise<void> {
  const replicas = [await startReplica('a', false), await startReplica('b', true)];
  const urls = replicas.map(s => `http://127.0.0.1:${(s.address() as AddressInfo).port}`);

  const getUser = faultTolerant(
    async (call, id: string) => (await call.http.request('GET', `/users/${id}`)).json<User>(),
    {
      dependencyId: 'users',
      loadBalancer: urls, // a retry goes to a replica not tried yet
      timeout: 2_000, // the whole call, retries included
      fallback: (_error, id): User => ({ id, name: 'unknown', servedBy: 'fallback' }),
    },
  );
  for (const id of ['1', '2', '3']) console.log(await getUser(id)); // all served by "b"
  const { calls, successes, retries } = getUser.stats();
  console.log({ calls, successes, retries });

  await getUser.close();
  for (const server of replicas) server.close();
}

main().catch(error => {
  console.error(error);
  process.exitCode = 1;
});
