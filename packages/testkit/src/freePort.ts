import { createServer } from 'node:net';

/**
 * Finds a currently free TCP port by binding port 0 on `host`, reading the port the OS picked and
 * closing the listener again. Another process may grab the port before you use it; prefer binding
 * port 0 directly when you can.
 */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(err => {
        if (err) reject(err);
        else if (port === 0) reject(new Error('freePort: could not read the bound port'));
        else resolve(port);
      });
    });
  });
}
