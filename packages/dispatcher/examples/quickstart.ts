import { childProcess, createDispatcher, inProcess, responseJson } from '@x/dispatcher';

// The `api` module's instances are child processes: any HTTP server listening on process.env.PORT.
const API_SERVER = `require('node:http').createServer((req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ instance: process.env.X_INSTANCE, pid: process.pid, path: req.url }));
}).listen(Number(process.env.PORT), '127.0.0.1');`;

// dispatch.yaml rules (also accepted as a list, or as { file: 'dispatch.yaml' }, hot-reloaded)
const DISPATCH_YAML = `
dispatch:
  - url: '*/api/*'
    module: api
`;

async function main(): Promise<void> {
  const dispatcher = createDispatcher({
    host: 'example.com',
    modules: {
      default: { versions: { v1: { backend: inProcess(req => ({ body: `hello ${req.path}` })) } } },
      api: {
        versions: {
          v1: {
            backend: childProcess({ args: ['-e', API_SERVER] }),
            scaling: { kind: 'manual', instances: 2 },
          },
        },
      },
    },
    rules: DISPATCH_YAML,
  });
  const door = await dispatcher.listen({ port: 0 }); // 127.0.0.1, a free port

  for (const path of ['/', '/api/items']) {
    const res = await fetch(`${door.url}${path}`);
    console.log(path, '→', res.headers.get('x-served-by'), await res.text());
  }
  const direct = await dispatcher.addRequest({
    url: '/api/items',
    headers: { host: '1.v1.api.example.com' },
  });
  console.log('instance 1 of api:', responseJson(direct));
  console.log(dispatcher.explain({ url: '/api/items', headers: { host: 'example.com' } }).reasons);

  await door.close();
  await dispatcher.close(); // stops and reaps the child processes
}

main().catch(error => {
  console.error(error);
  process.exitCode = 1;
});
